//! HTTP agents: one per destination, built once and reused (keep-alive), each with the
//! configured timeouts. The Kubernetes agent never uses a proxy and, in-cluster, trusts only the
//! service-account CA; the AWS agent trusts the Mozilla roots compiled into the binary (a scratch
//! image has no /etc/ssl) and honours `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`.
//!
//! The Kubernetes agent's connections stop on shutdown (`StopOnShutdown`): a wait for input
//! (an answer, the next line of a watch) looks at [`shutdown::requested`] every
//! [`shutdown::POLL`] and then fails with [`shutdown::stopped`], so a call ends within a
//! fraction of a second of SIGTERM, back in code that can log; resolving, connecting and
//! writing, which cannot be cut into slices, are [`shutdown::abortable`].

use std::sync::Arc;

use ureq::Agent;
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::time::Duration as UreqDuration;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, NextTimeout, RustlsConnector, TcpConnector, Transport,
};

use crate::config::Timeouts;
use crate::shutdown;

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
    // No proxy, so the chain is TCP, then TLS for https (what ureq's default chain does then),
    // with the TCP connection made to stop on shutdown.
    let connector =
        StopOnShutdown(().chain(TcpConnector::default())).chain(RustlsConnector::default());
    let config = builder(timeouts, roots).proxy(None).build();
    Ok(Agent::with_parts(
        config,
        connector,
        AbortableResolve(DefaultResolver::default()),
    ))
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

/// A resolver whose lookups are [`shutdown::abortable`]: a lookup cannot be cut into slices
/// (it runs on this thread, bounded by the system resolver's own timeouts).
#[derive(Debug)]
struct AbortableResolve<R>(R);

impl<R: Resolver> Resolver for AbortableResolve<R> {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        shutdown::abortable(|| self.0.resolve(uri, config, timeout))
    }

    fn empty(&self) -> ResolvedSocketAddrs {
        self.0.empty()
    }
}

/// A connector whose connections stop on shutdown: it makes the connection with `C` (as one
/// [`shutdown::abortable`] step: a connect cannot be cut into slices, and it is bounded by the
/// connect timeout, so a signal during it ends the process) and hands on a
/// [`StoppingTransport`]. Placed under TLS, so that a wait cut into slices only ever re-reads
/// the socket.
#[derive(Debug)]
struct StopOnShutdown<C>(C);

impl<C: Connector<()>> Connector<()> for StopOnShutdown<C> {
    type Out = StoppingTransport<C::Out>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let transport = shutdown::abortable(|| self.0.connect(details, chained))?;
        Ok(transport.map(StoppingTransport))
    }
}

/// A transport that waits for input in slices of at most [`shutdown::POLL`], within the
/// timeout it was given, and fails the wait with [`shutdown::stopped`] once a shutdown is
/// requested. A write is [`shutdown::abortable`]: one cut short could not be resumed (a
/// request is a few KiB that the socket takes at once; the write timeout bounds the rest), and
/// none starts once a shutdown is requested.
#[derive(Debug)]
struct StoppingTransport<T>(T);

impl<T: Transport> Transport for StoppingTransport<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.0.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        shutdown::abortable(|| self.0.transmit_output(amount, timeout))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        // The whole wait's budget (the per-read limit applied here, as the socket would).
        let budget = timeout.for_read();
        let total = (!budget.after.is_not_happening()).then_some(*budget.after);
        let started = std::time::Instant::now();
        loop {
            if shutdown::requested() {
                return Err(ureq::Error::Io(shutdown::stopped()));
            }
            let left = total.map(|t| t.saturating_sub(started.elapsed()));
            if left.is_some_and(|l| l.is_zero()) {
                return Err(ureq::Error::Timeout(budget.reason));
            }
            let slice = left.map_or(shutdown::POLL, |l| l.min(shutdown::POLL));
            let last = left.is_some_and(|l| l <= shutdown::POLL);
            let slice_timeout = NextTimeout {
                after: UreqDuration::Exact(slice),
                reason: budget.reason,
                per_read: None,
                per_write: budget.per_write,
            };
            match self.0.await_input(slice_timeout) {
                Err(ureq::Error::Timeout(_)) if !last => continue,
                other => return other,
            }
        }
    }

    fn is_open(&mut self) -> bool {
        self.0.is_open()
    }

    fn is_tls(&self) -> bool {
        self.0.is_tls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use ureq::unversioned::transport::LazyBuffers;

    /// A socket that gives nothing for `silent` waits (each lasting its whole timeout), then
    /// one byte; it records each wait's timeout.
    #[derive(Debug)]
    struct Quiet {
        buffers: LazyBuffers,
        silent: usize,
        waits: Vec<Duration>,
    }

    impl Quiet {
        fn new(silent: usize) -> Quiet {
            Quiet {
                buffers: LazyBuffers::new(64, 64),
                silent,
                waits: Vec::new(),
            }
        }
    }

    impl Transport for Quiet {
        fn buffers(&mut self) -> &mut dyn Buffers {
            &mut self.buffers
        }
        fn transmit_output(&mut self, _: usize, _: NextTimeout) -> Result<(), ureq::Error> {
            Ok(())
        }
        fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
            assert!(!timeout.after.is_not_happening(), "every slice has an end");
            self.waits.push(*timeout.after);
            if self.waits.len() > self.silent {
                self.buffers.input_append_buf()[0] = b'x';
                self.buffers.input_appended(1);
                return Ok(true);
            }
            std::thread::sleep(*timeout.after);
            Err(ureq::Error::Timeout(timeout.reason))
        }
        fn is_open(&mut self) -> bool {
            true
        }
    }

    fn wait(after: UreqDuration, per_read: Option<Duration>) -> NextTimeout {
        NextTimeout {
            after,
            reason: ureq::Timeout::RecvBody,
            per_read: per_read.map(UreqDuration::Exact),
            per_write: None,
        }
    }

    #[test]
    fn a_wait_without_end_is_cut_into_slices_until_input_comes() {
        let mut transport = StoppingTransport(Quiet::new(3));
        let got = transport.await_input(wait(UreqDuration::NotHappening, None));
        assert!(matches!(got, Ok(true)), "{got:?}");
        assert_eq!(transport.0.waits, [shutdown::POLL; 4]);
    }

    #[test]
    fn a_bounded_wait_still_ends_with_its_own_timeout() {
        let mut transport = StoppingTransport(Quiet::new(usize::MAX));
        let budget = Duration::from_millis(250);
        let got = transport.await_input(wait(UreqDuration::NotHappening, Some(budget)));
        assert!(
            matches!(got, Err(ureq::Error::Timeout(ureq::Timeout::PerRead))),
            "the per-read limit, with its reason: {got:?}"
        );
        let waits = &transport.0.waits;
        assert!(waits.len() >= 2, "cut into slices: {waits:?}");
        assert!(waits.iter().all(|w| *w <= shutdown::POLL), "{waits:?}");
        assert!(waits.iter().sum::<Duration>() <= budget, "{waits:?}");
    }
}
