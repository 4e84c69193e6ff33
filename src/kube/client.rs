//! The Kubernetes API client: base URL and authentication (none through `kubectl proxy`, or the
//! service-account token in-cluster, re-read every minute and after a 401 because the kubelet
//! rotates it), one reused agent, bounded retries of transient failures, and the one place that
//! turns an answer into a [`KubeError`].

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::io::BufReader;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use ureq::Agent;
use ureq::http::{Method, Request};

use super::error::KubeError;
use crate::config::{KubeAccess, Timeouts};
use crate::secret::Sensitive;

/// How long a read token is trusted before the file is read again (as client-go does).
const TOKEN_REREAD: Duration = Duration::from_secs(60);
/// Attempts of one request when the failure is transient (no answer, 429, 5xx).
const MAX_ATTEMPTS: u32 = 3;
/// The longest `Retry-After` honoured (the API server sends at most 32 s).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(32);
/// Largest answer read (a page of 500 namespaces is far below this).
const MAX_BODY: u64 = 64 * 1024 * 1024;
/// Longest line of a watch stream (one event).
const MAX_LINE: usize = 4 * 1024 * 1024;

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
        let text = std::fs::read_to_string(&self.path).map_err(|e| {
            KubeError::Auth(format!(
                "cannot read the service-account token {}: {e}",
                self.path.display()
            ))
        })?;
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
                let ca = std::fs::read(&ca_path).map_err(|e| {
                    format!(
                        "cannot read the service-account CA {}: {e}",
                        ca_path.display()
                    )
                })?;
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

    /// `GET path` (path includes the query).
    pub fn get(&self, path: &str) -> Result<Value, KubeError> {
        self.request(Method::GET, path, None, None)
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, KubeError> {
        self.request(Method::POST, path, Some("application/json"), Some(body))
    }

    /// `PUT path` with a JSON body.
    pub fn put(&self, path: &str, body: &Value) -> Result<Value, KubeError> {
        self.request(Method::PUT, path, Some("application/json"), Some(body))
    }

    /// `PATCH path` with the given patch content type.
    pub fn patch(&self, path: &str, content_type: &str, body: &Value) -> Result<Value, KubeError> {
        self.request(Method::PATCH, path, Some(content_type), Some(body))
    }

    /// One logical request: retried on transient failures (bounded), and once after a 401 with
    /// a freshly read token.
    fn request(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Value, KubeError> {
        let label = format!("{method} {}", path.split('?').next().unwrap_or(path));
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let mut reread_token = false;
        let mut attempt = 1;
        loop {
            let result = self.send_once(&method, path, content_type, &body, reread_token, &label);
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
        builder.body(body.to_vec()).map_err(|e| KubeError::Decode {
            request: label.to_string(),
            message: format!("cannot build the request: {e}"),
        })
    }

    /// Sends a request; counts the answer's status; turns a failure into a [`KubeError`].
    fn send(
        &self,
        request: Request<Vec<u8>>,
        label: &str,
    ) -> Result<ureq::http::Response<ureq::Body>, KubeError> {
        let response = crate::shutdown::abortable(|| self.agent.run(request));
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                *self.requests_by_code.borrow_mut().entry(0).or_default() += 1;
                let request = label.to_string();
                let message = e.to_string();
                return Err(if is_tls_failure(&e) {
                    KubeError::Tls { request, message }
                } else {
                    KubeError::Transport { request, message }
                });
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
        let text = read_text(response, label)?;
        log::trace!("{label} -> {code} ({} bytes)", text.len());
        Err(KubeError::from_response(
            label.to_string(),
            code,
            retry_after.as_deref(),
            &text,
        ))
    }

    fn send_once(
        &self,
        method: &Method,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
        force_token: bool,
        label: &str,
    ) -> Result<Value, KubeError> {
        let request = self.build(method, path, content_type, body, force_token, label)?;
        log::trace!("{label} ({} bytes)", body.len());
        let response = self.send(request, label)?;
        let text = read_text(response, label)?;
        log::trace!("{label} -> ok ({} bytes)", text.len());
        serde_json::from_str(&text).map_err(|e| KubeError::Decode {
            request: label.to_string(),
            message: format!("body is not JSON: {e}"),
        })
    }

    /// `GET path` whose answer is a stream of lines (a watch): `on_line` gets each line as it
    /// arrives, until it returns `false` or the server ends the stream. `limit` bounds the whole
    /// call. A 401 reads the service-account token again and tries once more.
    pub fn stream_lines(
        &self,
        path: &str,
        limit: Duration,
        mut on_line: impl FnMut(&str) -> bool,
    ) -> Result<(), KubeError> {
        let label = format!("WATCH {}", path.split('?').next().unwrap_or(path));
        let mut force_token = false;
        let response = loop {
            let request = self.build(&Method::GET, path, None, &[], force_token, &label)?;
            let request = self
                .agent
                .configure_request(request)
                .timeout_recv_body(Some(limit))
                .build();
            match self.send(request, &label) {
                Err(e) if e.code() == Some(401) && self.token.is_some() && !force_token => {
                    log::info!(
                        "{label}: 401 Unauthorized; reading the service-account token again"
                    );
                    force_token = true;
                }
                other => break other?,
            }
        };
        let mut reader = BufReader::new(response.into_body().into_reader());
        let mut line = String::new();
        loop {
            line.clear();
            let read = crate::shutdown::abortable(|| reader.read_line(&mut line)).map_err(|e| {
                KubeError::Transport {
                    request: label.clone(),
                    message: format!("reading the stream: {e}"),
                }
            })?;
            if read == 0 {
                return Ok(());
            }
            if line.len() > MAX_LINE {
                return Err(KubeError::Decode {
                    request: label,
                    message: format!("a line of {} bytes", line.len()),
                });
            }
            let trimmed = line.trim();
            if !trimmed.is_empty() && !on_line(trimmed) {
                return Ok(());
            }
        }
    }
}

/// Reads a whole answer as text (bounded).
fn read_text(response: ureq::http::Response<ureq::Body>, label: &str) -> Result<String, KubeError> {
    crate::shutdown::abortable(|| {
        response
            .into_body()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
    })
    .map_err(|e| KubeError::Transport {
        request: label.to_string(),
        message: format!("reading the answer: {e}"),
    })
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
