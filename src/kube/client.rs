//! The Kubernetes API client: base URL and authentication (none through `kubectl proxy`, or the
//! service-account token in-cluster, re-read every minute and after a 401 because the kubelet
//! rotates it), one reused agent, bounded retries of transient failures, bounded reads of every
//! answer, and the one place that turns an answer into a [`KubeError`].
//!
//! Every answer is read through a byte cap chosen by its kind ([`Cap`]) and parsed straight from
//! the stream into the caller's typed struct, so neither the bytes held nor what parsing
//! allocates can grow with what a server sends. What breaks the protocol (over the cap, not
//! UTF-8 where text is read, not the expected JSON) is a [`KubeError::Protocol`], never retried.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde_json::Value;
use ureq::Agent;
use ureq::http::{Method, Request};

use super::error::KubeError;
use crate::config::{KubeAccess, Timeouts};
use crate::sensitive::Sensitive;

/// How long a read token is trusted before the file is read again (as client-go does).
const TOKEN_REREAD: Duration = Duration::from_secs(60);
/// Attempts of one request when the failure is transient (no complete answer, 429, 5xx).
const MAX_ATTEMPTS: u32 = 3;
/// The longest `Retry-After` honoured (the API server sends at most 32 s).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(32);
/// The largest error answer read (a Status needs a few KiB).
pub const MAX_ERROR_BODY: u64 = 64 * 1024;
/// The longest line of a watch stream (one event: one Namespace object, a few KiB).
pub const MAX_WATCH_LINE: usize = 1024 * 1024;
/// The largest service-account token file read (real ones are about 1 KiB).
const MAX_TOKEN_FILE: u64 = 64 * 1024;
/// The largest service-account CA file read (a bundle of a few certificates is a few KiB).
const MAX_CA_FILE: u64 = 1024 * 1024;

/// What a shutdown request does to a call that waits for its answer (the agent's transport
/// then fails the wait within [`crate::shutdown::POLL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnShutdown {
    /// The process ends there, with the log line ([`crate::shutdown::exit`]): a step of a
    /// cycle, after which no other may start.
    Exit,
    /// The error goes back to the caller, which stops: the watch.
    Fail,
}

impl OnShutdown {
    fn run<T, E>(self, call: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let result = call();
        if result.is_err() && self == OnShutdown::Exit && crate::shutdown::requested() {
            crate::shutdown::exit();
        }
        result
    }
}

/// The byte cap of a success answer, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// A page of a list: 500 real namespaces with managedFields are well under 1 MiB; 8 MiB
    /// leaves room for a server that ignores `limit`. Parsing keeps only names, so memory does
    /// not follow the page's size.
    ListPage,
    /// One object (a Secret holds at most 1 MiB of data, 1.4 MiB in base64, plus metadata).
    Object,
}

impl Cap {
    /// The cap in bytes.
    pub fn bytes(self) -> u64 {
        match self {
            Cap::ListPage => 8 * 1024 * 1024,
            Cap::Object => 3 * 1024 * 1024,
        }
    }
}

/// The service-account token file and the last value read from it.
struct TokenFile {
    path: PathBuf,
    cached: RefCell<Option<(Sensitive, Instant)>>,
}

impl TokenFile {
    fn read(&self, force: bool) -> Result<Sensitive, KubeError> {
        if !force
            && let Some((token, at)) = self.cached.borrow().as_ref()
            && at.elapsed() < TOKEN_REREAD
        {
            return Ok(token.clone());
        }
        let mut text = String::new();
        std::fs::File::open(&self.path)
            .and_then(|f| f.take(MAX_TOKEN_FILE + 1).read_to_string(&mut text))
            .map_err(|e| {
                KubeError::Auth(format!(
                    "cannot read the service-account token {}: {e}",
                    self.path.display()
                ))
            })?;
        if text.len() as u64 > MAX_TOKEN_FILE {
            return Err(KubeError::Auth(format!(
                "the service-account token {} is larger than {MAX_TOKEN_FILE} bytes",
                self.path.display()
            )));
        }
        let token = Sensitive::new(text.trim());
        if token.expose().is_empty() {
            return Err(KubeError::Auth(format!(
                "the service-account token {} is empty",
                self.path.display()
            )));
        }
        *self.cached.borrow_mut() = Some((token.clone(), Instant::now()));
        Ok(token)
    }
}

/// A client for one API server.
pub struct KubeClient {
    agent: Agent,
    base: String,
    token: Option<TokenFile>,
    requests_by_code: RefCell<BTreeMap<u16, u64>>,
    retry_pause: Cell<Duration>,
}

impl KubeClient {
    /// A client for `access`. The error names the file that could not be used.
    pub fn new(access: &KubeAccess, timeouts: Timeouts) -> Result<KubeClient, String> {
        match access {
            KubeAccess::Endpoint { url, .. } => Ok(KubeClient::with_agent(
                crate::http::kube_agent(timeouts, None)?,
                url,
                None,
            )),
            KubeAccess::InCluster {
                url,
                service_account_dir,
            } => {
                let ca_path = service_account_dir.join("ca.crt");
                let mut ca = Vec::new();
                std::fs::File::open(&ca_path)
                    .and_then(|f| f.take(MAX_CA_FILE + 1).read_to_end(&mut ca))
                    .map_err(|e| {
                        format!(
                            "cannot read the service-account CA {}: {e}",
                            ca_path.display()
                        )
                    })?;
                if ca.len() as u64 > MAX_CA_FILE {
                    return Err(format!(
                        "the service-account CA {} is larger than {MAX_CA_FILE} bytes",
                        ca_path.display()
                    ));
                }
                let agent = crate::http::kube_agent(timeouts, Some(&ca))
                    .map_err(|e| format!("the service-account CA {} {e}", ca_path.display()))?;
                Ok(KubeClient::with_agent(
                    agent,
                    url,
                    Some(service_account_dir.join("token")),
                ))
            }
        }
    }

    fn with_agent(agent: Agent, base: &str, token_path: Option<PathBuf>) -> KubeClient {
        KubeClient {
            agent,
            base: base.trim_end_matches('/').to_string(),
            token: token_path.map(|path| TokenFile {
                path,
                cached: RefCell::new(None),
            }),
            requests_by_code: RefCell::new(BTreeMap::new()),
            retry_pause: Cell::new(Duration::from_millis(500)),
        }
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Answers received so far, by HTTP status (0 = no answer).
    pub fn requests_by_code(&self) -> BTreeMap<u16, u64> {
        self.requests_by_code.borrow().clone()
    }

    /// Sets the first pause between retries of a transient failure (tests make it short).
    pub fn set_retry_pause(&self, pause: Duration) {
        self.retry_pause.set(pause);
    }

    /// `GET path` (path includes the query), its answer parsed as `T` within `cap`.
    pub fn get<T: DeserializeOwned>(&self, path: &str, cap: Cap) -> Result<T, KubeError> {
        self.request(Method::GET, path, None, None, cap)
    }

    /// `POST path` with a JSON body.
    pub fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
        cap: Cap,
    ) -> Result<T, KubeError> {
        self.request(
            Method::POST,
            path,
            Some("application/json"),
            Some(body),
            cap,
        )
    }

    /// `PUT path` with a JSON body.
    pub fn put<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
        cap: Cap,
    ) -> Result<T, KubeError> {
        self.request(Method::PUT, path, Some("application/json"), Some(body), cap)
    }

    /// `PATCH path` with the given patch content type.
    pub fn patch<T: DeserializeOwned>(
        &self,
        path: &str,
        content_type: &str,
        body: &Value,
        cap: Cap,
    ) -> Result<T, KubeError> {
        self.request(Method::PATCH, path, Some(content_type), Some(body), cap)
    }

    /// One logical request: retried on transient failures (at most [`MAX_ATTEMPTS`] sends),
    /// and once after a 401 with a freshly read token. An unreachable server, a TLS failure and
    /// a protocol error are returned at once.
    fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<&Value>,
        cap: Cap,
    ) -> Result<T, KubeError> {
        let label = format!("{method} {}", path.split('?').next().unwrap_or(path));
        check_path(path, &label)?;
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let mut reread_token = false;
        let mut attempt = 1;
        loop {
            let result = self.send_once(
                &method,
                path,
                content_type,
                &body,
                reread_token,
                &label,
                cap,
            );
            match result {
                Err(e) if e.code() == Some(401) && self.token.is_some() && !reread_token => {
                    log::info!(
                        "{label}: 401 Unauthorized; reading the service-account token again"
                    );
                    reread_token = true;
                }
                Err(e) if e.is_transient() && attempt < MAX_ATTEMPTS => {
                    let pause = match &e {
                        KubeError::Api {
                            retry_after: Some(after),
                            ..
                        } => (*after).min(MAX_RETRY_AFTER),
                        _ => self.retry_pause.get() * 2u32.pow(attempt - 1),
                    };
                    log::warn!(
                        "{e}; retrying in {:.1} s (attempt {attempt} of {MAX_ATTEMPTS})",
                        pause.as_secs_f64()
                    );
                    if crate::shutdown::sleep(pause) {
                        return Err(e);
                    }
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// The request with its headers (and the bearer token in-cluster).
    fn build(
        &self,
        method: &Method,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
        force_token: bool,
        label: &str,
    ) -> Result<Request<Vec<u8>>, KubeError> {
        let url = format!("{}{}", self.base, path);
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(&url)
            .header("accept", "application/json");
        if let Some(ct) = content_type {
            builder = builder.header("content-type", ct);
        }
        if let Some(token_file) = &self.token {
            let token = token_file.read(force_token)?;
            builder = builder.header("authorization", format!("Bearer {}", token.expose()));
        }
        builder
            .body(body.to_vec())
            .map_err(|e| KubeError::protocol(label, &format!("cannot build the request: {e}")))
    }

    /// Sends a request; counts the answer's status; turns a failure into a [`KubeError`].
    fn send(
        &self,
        request: Request<Vec<u8>>,
        label: &str,
        on_shutdown: OnShutdown,
    ) -> Result<ureq::http::Response<ureq::Body>, KubeError> {
        let response = on_shutdown.run(|| self.agent.run(request));
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                *self.requests_by_code.borrow_mut().entry(0).or_default() += 1;
                return Err(transport_error(&e, label));
            }
        };
        let code = response.status().as_u16();
        *self.requests_by_code.borrow_mut().entry(code).or_default() += 1;
        if (200..300).contains(&code) {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = read_error_body(response, label, on_shutdown)?;
        log::trace!("{label} -> {code} ({} bytes)", text.len());
        Err(KubeError::from_response(
            label.to_string(),
            code,
            retry_after.as_deref(),
            &text,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn send_once<T: DeserializeOwned>(
        &self,
        method: &Method,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
        force_token: bool,
        label: &str,
        cap: Cap,
    ) -> Result<T, KubeError> {
        let request = self.build(method, path, content_type, body, force_token, label)?;
        log::trace!("{label} ({} bytes)", body.len());
        let response = self.send(request, label, OnShutdown::Exit)?;
        let value = parse_body(response, label, cap)?;
        log::trace!("{label} -> ok");
        Ok(value)
    }

    /// `GET path` whose answer is a stream of lines (a watch): `on_line` gets each line as it
    /// arrives, until it returns `false` or the server ends the stream. `limit` bounds the whole
    /// call; a line longer than [`MAX_WATCH_LINE`] or not UTF-8 ends it with a protocol error
    /// (bounded while reading: the line is never held whole). A 401 reads the service-account
    /// token again and tries once more. A shutdown request ends the call within
    /// [`crate::shutdown::POLL`] with a transport error saying so (callers look at
    /// [`crate::shutdown::requested`] first); `on_line` is not called after it.
    pub fn stream_lines(
        &self,
        path: &str,
        limit: Duration,
        mut on_line: impl FnMut(&str) -> bool,
    ) -> Result<(), KubeError> {
        let label = format!("WATCH {}", path.split('?').next().unwrap_or(path));
        check_path(path, &label)?;
        let mut force_token = false;
        let response = loop {
            let request = self.build(&Method::GET, path, None, &[], force_token, &label)?;
            let request = self
                .agent
                .configure_request(request)
                .timeout_recv_body(Some(limit))
                .build();
            match self.send(request, &label, OnShutdown::Fail) {
                Err(e) if e.code() == Some(401) && self.token.is_some() && !force_token => {
                    log::info!(
                        "{label}: 401 Unauthorized; reading the service-account token again"
                    );
                    force_token = true;
                }
                other => break other?,
            }
        };
        let mut reader = BufReader::with_capacity(64 * 1024, response.into_body().into_reader());
        let mut line = Vec::new();
        loop {
            line.clear();
            let more = read_line_bounded(&mut reader, &mut line, MAX_WATCH_LINE)
                .map_err(|e| read_error(e, &label))?;
            if !more {
                return Ok(());
            }
            let text = std::str::from_utf8(&line)
                .map_err(|_| KubeError::protocol(&label, "a line that is not UTF-8"))?;
            let trimmed = text.trim();
            if !trimmed.is_empty() && !on_line(trimmed) {
                return Ok(());
            }
        }
    }
}

/// Reads one line (without its `\n`) into `line`, failing as soon as it would exceed `max`
/// bytes. `Ok(false)` at the end of the stream.
fn read_line_bounded(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<bool> {
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(!line.is_empty());
        }
        let (chunk, done) = match buffer.iter().position(|b| *b == b'\n') {
            Some(end) => (&buffer[..end], Some(end + 1)),
            None => (buffer, None),
        };
        if line.len() + chunk.len() > max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                LineTooLong(max),
            ));
        }
        line.extend_from_slice(chunk);
        let used = done.unwrap_or(chunk.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(true);
        }
    }
}

/// A watch line over its cap.
#[derive(Debug)]
struct LineTooLong(usize);

impl std::fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a line longer than {} bytes", self.0)
    }
}

impl std::error::Error for LineTooLong {}

/// Parses a success answer as `T` straight from the stream, reading at most `cap` bytes.
fn parse_body<T: DeserializeOwned>(
    response: ureq::http::Response<ureq::Body>,
    label: &str,
    cap: Cap,
) -> Result<T, KubeError> {
    let reader = response
        .into_body()
        .into_with_config()
        .limit(cap.bytes())
        .reader();
    let reader = BufReader::with_capacity(16 * 1024, reader);
    OnShutdown::Exit
        .run(|| serde_json::from_reader::<_, T>(reader))
        .map_err(|e| {
            if e.is_io() {
                read_error(std::io::Error::from(e), label)
            } else {
                KubeError::protocol(label, &format!("the answer is not the JSON expected: {e}"))
            }
        })
}

/// Reads an error answer as text, at most [`MAX_ERROR_BODY`] bytes (invalid UTF-8 replaced:
/// the status code carries the meaning).
fn read_error_body(
    response: ureq::http::Response<ureq::Body>,
    label: &str,
    on_shutdown: OnShutdown,
) -> Result<String, KubeError> {
    let mut bytes = Vec::new();
    on_shutdown
        .run(|| {
            response
                .into_body()
                .into_with_config()
                .limit(MAX_ERROR_BODY)
                .reader()
                .read_to_end(&mut bytes)
        })
        .map_err(|e| read_error(e, label))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// What a failed read of an answer means: over its cap, a broken line or body, or not UTF-8 is a
/// protocol error; a reset or a timeout is a transport one.
fn read_error(e: std::io::Error, label: &str) -> KubeError {
    if let Some(inner) = e.get_ref() {
        if let Some(LineTooLong(max)) = inner.downcast_ref::<LineTooLong>() {
            return KubeError::protocol(label, &format!("a line longer than {max} bytes"));
        }
        if let Some(ureq_error) = inner.downcast_ref::<ureq::Error>() {
            return match ureq_error {
                ureq::Error::BodyExceedsLimit(max) => {
                    KubeError::protocol(label, &format!("the answer is larger than {max} bytes"))
                }
                ureq::Error::Timeout(_) | ureq::Error::Io(_) => KubeError::Transport {
                    request: label.to_string(),
                    message: format!("reading the answer: {ureq_error}"),
                },
                other => KubeError::protocol(label, &format!("reading the answer: {other}")),
            };
        }
    }
    match e.kind() {
        std::io::ErrorKind::InvalidData => {
            KubeError::protocol(label, &format!("reading the answer: {e}"))
        }
        _ => KubeError::Transport {
            request: label.to_string(),
            message: format!("reading the answer: {e}"),
        },
    }
}

/// The error of a call that got no answer: TLS, could not connect, or connected but broken off.
fn transport_error(e: &ureq::Error, label: &str) -> KubeError {
    let request = label.to_string();
    let message = crate::kube::error::bounded_text(&e.to_string(), 300);
    if is_tls_failure(e) {
        KubeError::Tls { request, message }
    } else if is_connect_failure(e) {
        KubeError::Unreachable { request, message }
    } else if matches!(
        e,
        ureq::Error::Protocol(_) | ureq::Error::BodyExceedsLimit(_) | ureq::Error::Http(_)
    ) {
        KubeError::Protocol { request, message }
    } else {
        KubeError::Transport { request, message }
    }
}

/// Whether a transport error means no connection could be made at all.
fn is_connect_failure(e: &ureq::Error) -> bool {
    use std::io::ErrorKind;
    match e {
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => true,
        ureq::Error::Timeout(t) => matches!(t, ureq::Timeout::Connect | ureq::Timeout::Resolve),
        ureq::Error::Io(io) => matches!(
            io.kind(),
            ErrorKind::ConnectionRefused
                | ErrorKind::HostUnreachable
                | ErrorKind::NetworkUnreachable
                | ErrorKind::AddrNotAvailable
        ),
        _ => false,
    }
}

/// Refuses to send a request whose path is not made of Kubernetes names, or whose query holds
/// anything but percent-encoded values: a check of the whole path at the one place every
/// request passes, behind the checks where each path is built.
fn check_path(path: &str, label: &str) -> Result<(), KubeError> {
    let (segments, query) = path.split_once('?').unwrap_or((path, ""));
    let segments_ok = segments
        .strip_prefix('/')
        .is_some_and(|rest| rest.split('/').all(crate::names::is_dns1123_subdomain));
    let query_ok = query
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~%=&".contains(&b));
    if segments_ok && query_ok {
        Ok(())
    } else {
        Err(KubeError::protocol(
            label,
            "refusing to send a request whose path is not made of Kubernetes names",
        ))
    }
}

/// Whether a transport error is a TLS failure (certificate not trusted, handshake refused)
/// rather than a network one.
fn is_tls_failure(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Rustls(_)
        | ureq::Error::Tls(_)
        | ureq::Error::Pem(_)
        | ureq::Error::TlsRequired => true,
        ureq::Error::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_refused_as_soon_as_it_outgrows_its_cap() {
        let mut endless = std::io::BufReader::with_capacity(8, std::io::repeat(b'x'));
        let mut line = Vec::new();
        let e = read_line_bounded(&mut endless, &mut line, 100).expect_err("too long");
        assert!(line.len() <= 100);
        assert!(matches!(
            read_error(e, "WATCH /x"),
            KubeError::Protocol { .. }
        ));
        let mut two = std::io::BufReader::with_capacity(3, &b"ab\ncdef\n\ng"[..]);
        let mut lines = Vec::new();
        loop {
            let mut line = Vec::new();
            if !read_line_bounded(&mut two, &mut line, 4).expect("read") {
                break;
            }
            lines.push(String::from_utf8(line).expect("utf-8"));
        }
        assert_eq!(lines, ["ab", "cdef", "", "g"]);
    }

    #[test]
    fn a_line_longer_than_its_cap_in_one_read_is_refused_and_one_of_the_cap_is_kept() {
        // The whole line arrives in one buffer: refused before any of it is kept.
        let mut one_read = std::io::BufReader::with_capacity(64, &b"0123456789abcdef\n"[..]);
        let mut line = Vec::new();
        read_line_bounded(&mut one_read, &mut line, 8).expect_err("16 bytes over a cap of 8");
        assert!(line.is_empty(), "{line:?}");
        let mut exact = std::io::BufReader::with_capacity(64, &b"01234567\n"[..]);
        assert!(read_line_bounded(&mut exact, &mut line, 8).expect("a line of the cap"));
        assert_eq!(line, b"01234567");
    }

    #[test]
    fn a_broken_answer_is_a_protocol_error_and_a_broken_connection_a_transport_one() {
        let cases = [
            (std::io::ErrorKind::InvalidData, "protocol"),
            (std::io::ErrorKind::UnexpectedEof, "transport"),
            (std::io::ErrorKind::ConnectionReset, "transport"),
        ];
        for (kind, expected) in cases {
            let e = read_error(
                std::io::Error::new(kind, "broken"),
                "GET /api/v1/namespaces",
            );
            let class = match e {
                KubeError::Protocol { .. } => "protocol",
                KubeError::Transport { .. } => "transport",
                _ => "other",
            };
            assert_eq!(class, expected, "{kind:?}: {e}");
        }
    }

    #[test]
    fn no_connection_a_tls_refusal_and_a_broken_exchange_are_told_apart() {
        use std::io::{Error, ErrorKind};
        let io = |kind| ureq::Error::Io(Error::new(kind, "io"));
        let tls_io = ureq::Error::Io(Error::other(rustls::Error::General("bad cert".into())));
        let cases = [
            (ureq::Error::HostNotFound, "unreachable"),
            (ureq::Error::ConnectionFailed, "unreachable"),
            (ureq::Error::Timeout(ureq::Timeout::Resolve), "unreachable"),
            (ureq::Error::Timeout(ureq::Timeout::Connect), "unreachable"),
            (io(ErrorKind::ConnectionRefused), "unreachable"),
            (io(ErrorKind::HostUnreachable), "unreachable"),
            (io(ErrorKind::NetworkUnreachable), "unreachable"),
            (io(ErrorKind::AddrNotAvailable), "unreachable"),
            (
                ureq::Error::Rustls(rustls::Error::General("bad cert".into())),
                "tls",
            ),
            (ureq::Error::Tls("handshake"), "tls"),
            (ureq::Error::TlsRequired, "tls"),
            (tls_io, "tls"),
            (
                ureq::Error::Timeout(ureq::Timeout::RecvResponse),
                "transport",
            ),
            (ureq::Error::Timeout(ureq::Timeout::Global), "transport"),
            (io(ErrorKind::ConnectionReset), "transport"),
            (io(ErrorKind::UnexpectedEof), "transport"),
        ];
        for (e, expected) in cases {
            let class = match transport_error(&e, "GET /api/v1/namespaces") {
                KubeError::Unreachable { .. } => "unreachable",
                KubeError::Tls { .. } => "tls",
                KubeError::Transport { .. } => "transport",
                _ => "other",
            };
            assert_eq!(class, expected, "{e:?}");
        }
    }

    #[test]
    fn only_paths_of_kubernetes_names_are_sent() {
        for good in [
            "/api/v1/namespaces?limit=500&fieldSelector=status.phase%3DActive",
            "/api/v1/namespaces/kube-system/secrets/ecr-pull",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        ] {
            assert!(check_path(good, "GET").is_ok(), "{good}");
        }
        for bad in [
            "/api/v1/namespaces/kube-system/secrets/victim#/secrets/x",
            "/api/v1/namespaces/a/../b",
            "/api/v1/namespaces//secrets",
            "/api/v1/namespaces/A/secrets",
            "/api/v1/namespaces?x=a b",
            "/api/v1/namespaces?x=#",
            "api/v1",
        ] {
            assert!(check_path(bad, "GET").is_err(), "{bad}");
        }
    }

    #[test]
    fn the_token_file_is_read_within_its_cap_kept_a_minute_and_read_again_when_forced() {
        let dir = std::env::temp_dir().join(format!("ecrupdater-satoken-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("token");
        let file = TokenFile {
            path: path.clone(),
            cached: RefCell::new(None),
        };
        let write = |text: &str| std::fs::write(&path, text).expect("write token");

        // Exactly the cap with its newline: read whole, trimmed.
        let mut long: String = (0..)
            .map(|i| format!("k8s-token-part-{i:05}-"))
            .take(4000)
            .collect();
        long.truncate(MAX_TOKEN_FILE as usize - 1);
        write(&format!("{long}\n"));
        let token = file.read(false).expect("a token of the cap");
        assert_eq!(token.expose(), long);
        // One byte more: refused, naming the file and the cap.
        write(&format!("{long}x\n"));
        let e = file.read(true).expect_err("over the cap").to_string();
        assert!(
            e.contains(&path.display().to_string()) && e.contains("larger than 65536 bytes"),
            "{e}"
        );

        // Within the minute the value read is used; a forced read (after a 401) reads the file.
        write("the-first-token\n");
        assert_eq!(file.read(true).expect("first").expose(), "the-first-token");
        write("the-second-token\n");
        assert_eq!(
            file.read(false).expect("cached").expose(),
            "the-first-token"
        );
        assert_eq!(
            file.read(true).expect("forced").expose(),
            "the-second-token"
        );
        // A minute later the file is read again.
        write("the-third-token\n");
        let a_minute_ago = Instant::now()
            .checked_sub(TOKEN_REREAD + Duration::from_secs(1))
            .expect("the machine has been up for a minute");
        if let Some((_, at)) = file.cached.borrow_mut().as_mut() {
            *at = a_minute_ago;
        }
        assert_eq!(file.read(false).expect("stale").expose(), "the-third-token");

        // Only whitespace: refused.
        write(" \n");
        let e = file.read(true).expect_err("empty").to_string();
        assert!(e.contains("is empty"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
