//! The HTTP agent for AWS endpoints and registries, with the network settings of
//! [`crate::config::Network`]: the CA bundle of `AWS_CA_BUNDLE` added to the Mozilla roots, and
//! the `ECR_REGISTRY_CONNECT_TO` rules applied where names are resolved (a ureq [`Resolver`]), so
//! that TLS still checks the host named in the URL. Proxies from the environment are honoured
//! as in [`crate::http::aws_agent`]; through a proxy, the proxy's own address is what is
//! resolved, so connect-to rules then do not apply.

use std::net::ToSocketAddrs;
use std::sync::Arc;

use ureq::Agent;
use ureq::config::Config as AgentConfig;
use ureq::http::Uri;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

use crate::config::{ConnectTo, Network, Timeouts};

/// An agent for AWS endpoints and registries.
pub fn aws_agent(timeouts: Timeouts, network: &Network) -> Agent {
    let roots = match &network.ca_bundle {
        None => RootCerts::WebPki,
        Some(extra) => {
            let mut certs: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(|c| Certificate::from_der(c.as_ref()))
                .collect();
            certs.extend(
                extra
                    .iter()
                    .map(|der| Certificate::from_der(der).to_owned()),
            );
            RootCerts::Specific(Arc::new(certs))
        }
    };
    let config = crate::http::phase_timeouts(timeouts.connect, timeouts.request)
        .tls_config(
            TlsConfig::builder()
                .provider(TlsProvider::Rustls)
                .root_certs(roots)
                .build(),
        )
        .proxy(ureq::Proxy::try_from_env())
        .build();
    with_rules(config, &network.connect_to)
}

fn with_rules(config: AgentConfig, rules: &[ConnectTo]) -> Agent {
    if rules.is_empty() {
        Agent::new_with_config(config)
    } else {
        Agent::with_parts(
            config,
            DefaultConnector::new(),
            ConnectToResolver {
                rules: rules.to_vec(),
                inner: DefaultResolver::default(),
            },
        )
    }
}

/// Resolves `HOST:PORT` of a rule to its `CONNECT_HOST:CONNECT_PORT`, anything else as usual.
#[derive(Debug)]
struct ConnectToResolver {
    rules: Vec<ConnectTo>,
    inner: DefaultResolver,
}

impl ConnectToResolver {
    fn rule_for(&self, uri: &Uri) -> Option<&ConnectTo> {
        let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().or(match uri.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        })?;
        self.rules
            .iter()
            .find(|r| r.port == port && r.host.eq_ignore_ascii_case(host))
    }
}

impl Resolver for ConnectToResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &AgentConfig,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let Some(rule) = self.rule_for(uri) else {
            return self.inner.resolve(uri, config, timeout);
        };
        log::trace!(
            "{}:{}: connecting to {}:{} (ECR_REGISTRY_CONNECT_TO)",
            rule.host,
            rule.port,
            rule.connect_host,
            rule.connect_port
        );
        let mut out = self.empty();
        for addr in (rule.connect_host.as_str(), rule.connect_port)
            .to_socket_addrs()?
            .take(16)
        {
            out.push(addr);
        }
        if out.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_host_and_port_only() {
        let r = ConnectToResolver {
            rules: vec![ConnectTo {
                host: "reg.example".into(),
                port: 443,
                connect_host: "127.0.0.1".into(),
                connect_port: 5000,
            }],
            inner: DefaultResolver::default(),
        };
        let uri = |s: &str| s.parse::<Uri>().expect("uri");
        assert!(r.rule_for(&uri("https://reg.example/v2/")).is_some());
        assert!(r.rule_for(&uri("https://REG.example:443/v2/")).is_some());
        assert!(r.rule_for(&uri("https://reg.example:8443/v2/")).is_none());
        assert!(r.rule_for(&uri("http://reg.example/v2/")).is_none());
        assert!(r.rule_for(&uri("https://other.example/v2/")).is_none());
        let addrs = r
            .resolve(
                &uri("https://reg.example/v2/"),
                &AgentConfig::default(),
                NextTimeout::default(),
            )
            .expect("resolved");
        assert_eq!(addrs.len(), 1);
        assert_eq!(addrs[0], "127.0.0.1:5000".parse().expect("addr"));
    }
}
