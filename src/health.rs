//! Health and metrics: the small shared status the main loop updates ([`Health`]) and the HTTP
//! endpoint that reads it ([`serve`]): `/healthz` (liveness), `/readyz` (readiness) and
//! `/metrics` (Prometheus text format 0.0.4).
//!
//! The endpoint is one thread that answers one connection at a time with std sockets: every
//! socket has 2 s timeouts and a 2 s deadline for the request head, so a slow or silent client
//! delays the others by at most that much. The status mutex is held only to copy or format,
//! never across I/O, so nothing here can hold up the main loop.
//!
//! - `/healthz` is 200 while every target namespace holds a token valid for at least
//!   [`MIN_VALIDITY`] more (and before the first cycle, so a just-started pod is not killed);
//!   503 once a target's token runs short, which means refreshing has been failing for hours.
//! - `/readyz` is 200 from the first successful cycle on.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::refresh::{CycleReport, Outcome};

/// `/healthz` fails when a target namespace's token is valid for less than this.
pub const MIN_VALIDITY: time::Duration = time::Duration::minutes(15);
/// Read and write timeout of each connection, and the deadline for its request head.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest request head read; a longer one is answered 400.
pub const MAX_HEAD: usize = 8 * 1024;
/// How many namespaces an unhealthy `/healthz` names.
const NAMED_IN_REASON: usize = 3;
/// How long to wait, after answering, for the client to close (so unread request bytes do not
/// turn the close into a reset that loses the response).
const LINGER: Duration = Duration::from_millis(250);

/// Where an error happened, for `ecrupdater_errors_total{stage=...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Credentials or the ECR token.
    Aws,
    /// The Kubernetes API.
    Kube,
}

/// The status itself; only ever touched under the mutex in [`Health`].
#[derive(Debug, Default)]
struct Status {
    /// Target namespaces and until when each holds a token (`None`: unknown, so none).
    targets: BTreeMap<String, Option<OffsetDateTime>>,
    /// At least one cycle produced a report.
    cycle_completed: bool,
    /// At least one cycle had no failure.
    ready: bool,
    last_success: Option<OffsetDateTime>,
    token_expiry: Option<OffsetDateTime>,
    last_duration: Option<Duration>,
    created: u64,
    updated: u64,
    unchanged: u64,
    skipped: u64,
    failed: u64,
    errors_aws: u64,
    errors_kube: u64,
    cycles_success: u64,
    cycles_failure: u64,
    api_requests: BTreeMap<u16, u64>,
}

/// A cheap-to-clone handle on the status: the main loop writes, the health thread reads.
#[derive(Debug, Clone, Default)]
pub struct Health {
    status: Arc<Mutex<Status>>,
}

impl Health {
    /// A fresh status: no cycle yet, not ready, every counter at zero.
    pub fn new() -> Health {
        Health::default()
    }

    fn lock(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes in a finished cycle. Namespaces created, updated or unchanged now hold a token valid
    /// until `report.token_expires_at`; failed ones keep what they had; skipped ones, and those
    /// absent from the report (deleted), stop being targets. A report without failures is a
    /// success: the daemon is ready from then on.
    pub fn record_cycle(&self, report: &CycleReport, now: OffsetDateTime) {
        let mut status = self.lock();
        let mut targets = BTreeMap::new();
        let mut failed = false;
        for (namespace, outcome) in &report.outcomes {
            match outcome {
                Outcome::Created => {
                    status.created += 1;
                    targets.insert(namespace.clone(), Some(report.token_expires_at));
                }
                Outcome::Updated => {
                    status.updated += 1;
                    targets.insert(namespace.clone(), Some(report.token_expires_at));
                }
                Outcome::Unchanged => {
                    status.unchanged += 1;
                    targets.insert(namespace.clone(), Some(report.token_expires_at));
                }
                Outcome::Skipped(_) => {
                    status.skipped += 1;
                    targets.remove(namespace);
                }
                Outcome::Failed(_) => {
                    status.failed += 1;
                    failed = true;
                    let before = status.targets.get(namespace).copied().flatten();
                    targets.insert(namespace.clone(), before);
                }
            }
        }
        status.targets = targets;
        status.cycle_completed = true;
        status.last_duration = Some(report.duration);
        status.token_expiry = Some(report.token_expires_at);
        if failed {
            status.cycles_failure += 1;
        } else {
            status.cycles_success += 1;
            status.last_success = Some(now);
            status.ready = true;
        }
    }

    /// Counts a cycle that failed as a whole (no token, or the namespaces could not be listed).
    /// The targets keep the validity they had.
    pub fn record_cycle_failure(&self) {
        self.lock().cycles_failure += 1;
    }

    /// Counts one error at `stage`.
    pub fn record_error(&self, stage: Stage) {
        let mut status = self.lock();
        match stage {
            Stage::Aws => status.errors_aws += 1,
            Stage::Kube => status.errors_kube += 1,
        }
    }

    /// Replaces the API request counts: cumulative totals by HTTP status code (0 = no answer).
    pub fn set_api_requests(&self, by_code: BTreeMap<u16, u64>) {
        self.lock().api_requests = by_code;
    }

    /// Liveness: `(true, "ok")` while every target namespace holds a token valid for at least
    /// [`MIN_VALIDITY`] after `now` (zero targets included), and `(true, "starting ...")` before
    /// the first cycle; otherwise `false` and a one-line reason naming the first few namespaces.
    pub fn healthz(&self, now: OffsetDateTime) -> (bool, String) {
        let (completed, total, mut short) = {
            let status = self.lock();
            let short: Vec<(Option<OffsetDateTime>, String)> = status
                .targets
                .iter()
                .filter(|(_, until)| until.is_none_or(|until| until - now < MIN_VALIDITY))
                .map(|(namespace, until)| (*until, namespace.clone()))
                .collect();
            (status.cycle_completed, status.targets.len(), short)
        };
        if !completed {
            return (true, "starting: no cycle has completed yet".into());
        }
        if short.is_empty() {
            return (true, "ok".into());
        }
        // The worst first: no token, then the earliest expiry.
        short.sort();
        let mut reason = format!(
            "{} of {total} target namespaces hold no token valid for {} more minutes:",
            short.len(),
            MIN_VALIDITY.whole_minutes()
        );
        for (i, (until, namespace)) in short.iter().take(NAMED_IN_REASON).enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            let state = match until {
                None => "no token".to_string(),
                Some(until) if *until <= now => {
                    format!("expired {} s ago", (now - *until).whole_seconds())
                }
                Some(until) => format!("expires in {} s", (*until - now).whole_seconds()),
            };
            let _ = write!(reason, "{sep}{} ({state})", one_line(namespace));
        }
        if short.len() > NAMED_IN_REASON {
            let _ = write!(reason, " and {} more", short.len() - NAMED_IN_REASON);
        }
        (false, reason)
    }

    /// Readiness: `true` from the first successful cycle on.
    pub fn readyz(&self) -> (bool, String) {
        if self.lock().ready {
            (true, "ready".into())
        } else {
            (false, "no successful cycle yet".into())
        }
    }

    /// The metrics in Prometheus text exposition format 0.0.4, `now` being the time of the
    /// scrape (for the remaining validity of the targets).
    pub fn metrics(&self, now: OffsetDateTime) -> String {
        let status = self.lock();
        let mut out = String::with_capacity(4096);

        metric_header(
            &mut out,
            "ecrupdater_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last cycle with no failed namespace (0 if never).",
        );
        sample(
            &mut out,
            "ecrupdater_last_success_timestamp_seconds",
            &[],
            &unix_seconds(status.last_success),
        );

        metric_header(
            &mut out,
            "ecrupdater_token_expiry_timestamp_seconds",
            "gauge",
            "Unix time the last written ECR token expires (0 if none yet).",
        );
        sample(
            &mut out,
            "ecrupdater_token_expiry_timestamp_seconds",
            &[],
            &unix_seconds(status.token_expiry),
        );

        metric_header(
            &mut out,
            "ecrupdater_secrets_total",
            "counter",
            "Per-namespace outcomes of refresh cycles, by result.",
        );
        for (result, n) in [
            ("created", status.created),
            ("updated", status.updated),
            ("unchanged", status.unchanged),
            ("skipped", status.skipped),
            ("failed", status.failed),
        ] {
            sample(
                &mut out,
                "ecrupdater_secrets_total",
                &[("result", result)],
                &n.to_string(),
            );
        }

        metric_header(
            &mut out,
            "ecrupdater_errors_total",
            "counter",
            "Errors, by stage.",
        );
        for (stage, n) in [("aws", status.errors_aws), ("kube", status.errors_kube)] {
            sample(
                &mut out,
                "ecrupdater_errors_total",
                &[("stage", stage)],
                &n.to_string(),
            );
        }

        metric_header(
            &mut out,
            "ecrupdater_api_requests_total",
            "counter",
            "HTTP requests to the Kubernetes API, by status code (\"none\": no answer).",
        );
        for (code, n) in &status.api_requests {
            let code = if *code == 0 {
                "none".to_string()
            } else {
                code.to_string()
            };
            sample(
                &mut out,
                "ecrupdater_api_requests_total",
                &[("code", &code)],
                &n.to_string(),
            );
        }

        metric_header(
            &mut out,
            "ecrupdater_cycle_duration_seconds",
            "gauge",
            "Duration of the last completed refresh cycle (0 if none yet).",
        );
        sample(
            &mut out,
            "ecrupdater_cycle_duration_seconds",
            &[],
            &float(status.last_duration.map_or(0.0, |d| d.as_secs_f64())),
        );

        metric_header(
            &mut out,
            "ecrupdater_cycles_total",
            "counter",
            "Refresh cycles, by result (failure: any namespace failed, or the cycle as a whole).",
        );
        for (result, n) in [
            ("success", status.cycles_success),
            ("failure", status.cycles_failure),
        ] {
            sample(
                &mut out,
                "ecrupdater_cycles_total",
                &[("result", result)],
                &n.to_string(),
            );
        }

        metric_header(
            &mut out,
            "ecrupdater_targets",
            "gauge",
            "Target namespaces, as of the last completed cycle.",
        );
        sample(
            &mut out,
            "ecrupdater_targets",
            &[],
            &status.targets.len().to_string(),
        );

        metric_header(
            &mut out,
            "ecrupdater_targets_valid_min_seconds",
            "gauge",
            "Smallest remaining validity of the token in any target namespace (negative: expired; 0 when one holds none; absent without targets).",
        );
        let min_valid = status
            .targets
            .values()
            .map(|until| until.map_or(0.0, |until| (until - now).as_seconds_f64()))
            .min_by(f64::total_cmp);
        if let Some(min_valid) = min_valid {
            sample(
                &mut out,
                "ecrupdater_targets_valid_min_seconds",
                &[],
                &float(min_valid),
            );
        }

        metric_header(
            &mut out,
            "ecrupdater_ready",
            "gauge",
            "1 once a refresh cycle has succeeded, else 0.",
        );
        sample(
            &mut out,
            "ecrupdater_ready",
            &[],
            if status.ready { "1" } else { "0" },
        );

        metric_header(
            &mut out,
            "ecrupdater_build_info",
            "gauge",
            "Always 1; the labels tell the build.",
        );
        sample(
            &mut out,
            "ecrupdater_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            "1",
        );

        out
    }
}

/// Appends the `# HELP` and `# TYPE` lines of a metric.
fn metric_header(out: &mut String, name: &str, kind: &str, help: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Appends one sample line, escaping the label values.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: &str) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{label}=\"{}\"", escape_label(value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A label value escaped per the text format: backslash, double quote and line feed.
fn escape_label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// A float as the text format spells it.
fn float(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        value.to_string()
    }
}

/// Seconds since the Unix epoch, or 0 for `None`.
fn unix_seconds(at: Option<OffsetDateTime>) -> String {
    float(at.map_or(0.0, |at| (at - OffsetDateTime::UNIX_EPOCH).as_seconds_f64()))
}

/// `text` with control characters dropped, so that it fits on one line.
fn one_line(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

/// Binds `addr` (such as `0.0.0.0:8080`, or `127.0.0.1:0` for any free port) and answers
/// `/healthz`, `/readyz` and `/metrics` from `health` on one thread named `health`, one
/// connection at a time. Returns the bound address and the thread, which runs until the process
/// ends.
pub fn serve(addr: &str, health: Health) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    let handle = thread::Builder::new()
        .name("health".into())
        .spawn(move || accept_loop(&listener, &health))?;
    log::debug!("health endpoint listening on {bound}");
    Ok((bound, handle))
}

fn accept_loop(listener: &TcpListener, health: &Health) {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                if let Err(e) = handle_connection(stream, health) {
                    log::debug!("health: connection from {peer}: {e}");
                }
            }
            Err(e) => {
                log::debug!("health: accept: {e}");
                // Out of file descriptors and the like: do not spin.
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// An answer to one request.
struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
    allow: bool,
}

impl Response {
    fn text(status: u16, line: impl Into<String>) -> Response {
        let mut body = line.into();
        body.push('\n');
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body,
            allow: false,
        }
    }
}

fn handle_connection(mut stream: TcpStream, health: &Health) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let Some(head) = read_head(&mut stream)? else {
        return Ok(());
    };
    let (response, head_only) = match head {
        Head::TooLarge => (Response::text(400, "request head too large"), false),
        Head::Complete(head) => route(&head, health),
    };
    write_response(&mut stream, &response, head_only)?;
    // Signal the end, then give the client a moment to close first.
    let _ = stream.shutdown(Shutdown::Write);
    linger(&mut stream);
    Ok(())
}

/// What came in before the blank line.
enum Head {
    Complete(Vec<u8>),
    TooLarge,
}

/// Reads the request head within [`IO_TIMEOUT`] overall. `None`: the client closed first.
fn read_head(stream: &mut TcpStream) -> io::Result<Option<Head>> {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = head_end(&head) {
            head.truncate(end);
            return Ok(Some(Head::Complete(head)));
        }
        if head.len() >= MAX_HEAD {
            return Ok(Some(Head::TooLarge));
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request head not complete in time",
            ));
        }
        stream.set_read_timeout(Some(remaining))?;
        let room = (MAX_HEAD - head.len()).min(chunk.len());
        let n = match stream.read(chunk.get_mut(..room).unwrap_or_default()) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "client closed in the middle of the request head",
                ))
            };
        }
        head.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

/// Where the head ends (before its blank line), accepting bare line feeds.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The answer to a request head, and whether it is a HEAD request (no body sent).
fn route(head: &[u8], health: &Health) -> (Response, bool) {
    let Some((method, path)) = parse_request_line(head) else {
        return (Response::text(400, "malformed request"), false);
    };
    let head_only = method == "HEAD";
    let response = match path {
        "/healthz" | "/readyz" | "/metrics" if method != "GET" && method != "HEAD" => {
            let mut response = Response::text(405, "method not allowed");
            response.allow = true;
            response
        }
        "/healthz" => {
            let (ok, reason) = health.healthz(OffsetDateTime::now_utc());
            Response::text(if ok { 200 } else { 503 }, reason)
        }
        "/readyz" => {
            let (ok, reason) = health.readyz();
            Response::text(if ok { 200 } else { 503 }, reason)
        }
        "/metrics" => Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: health.metrics(OffsetDateTime::now_utc()),
            allow: false,
        },
        _ => Response::text(404, "not found"),
    };
    (response, head_only)
}

/// The method and the path (without the query) of a request line `METHOD SP target SP HTTP/1.x`.
fn parse_request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let line = head.get(..line_end)?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || method.is_empty()
        || !method.bytes().all(is_tchar)
        || !target.starts_with('/')
        || target.bytes().any(|b| b.is_ascii_control())
        || !matches!(version, "HTTP/1.0" | "HTTP/1.1")
    {
        return None;
    }
    let path = target.split(['?', '#']).next().unwrap_or(target);
    Some((method, path))
}

/// A character allowed in a method name (RFC 9110 `tchar`).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn write_response(stream: &mut TcpStream, response: &Response, head_only: bool) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
        response.status,
        reason_phrase(response.status),
        response.content_type,
        response.body.len(),
    );
    if response.allow {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(&response.body);
    }
    stream.write_all(out.as_bytes())?;
    stream.flush()
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Reads and drops what the client still sends, for at most [`LINGER`], until it closes.
fn linger(stream: &mut TcpStream) {
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 1024];
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() || stream.set_read_timeout(Some(remaining)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> OffsetDateTime {
        // 2023-11-14T22:13:20Z
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    fn minutes(n: i64) -> time::Duration {
        time::Duration::minutes(n)
    }

    fn report(outcomes: &[(&str, Outcome)], expires: OffsetDateTime) -> CycleReport {
        CycleReport {
            outcomes: outcomes
                .iter()
                .map(|(ns, o)| (ns.to_string(), o.clone()))
                .collect(),
            duration: Duration::from_millis(1500),
            token_expires_at: expires,
        }
    }

    fn failed() -> Outcome {
        Outcome::Failed("boom".into())
    }

    /// Sends `request` raw and returns the status code and the whole response.
    fn request(addr: SocketAddr, request: &[u8]) -> (u16, String) {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        stream.write_all(request).expect("write");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).expect("read");
        let response = String::from_utf8(response).expect("utf-8");
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, response)
    }

    fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        request(
            addr,
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
        )
    }

    fn body(response: &str) -> &str {
        response.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }

    fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
        response
            .split("\r\n\r\n")
            .next()?
            .lines()
            .skip(1)
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim())
            })
    }

    fn start(health: &Health) -> SocketAddr {
        serve("127.0.0.1:0", health.clone()).expect("serve").0
    }

    #[test]
    fn readyz_turns_200_after_a_successful_cycle() {
        let health = Health::new();
        let addr = start(&health);
        let (status, response) = get(addr, "/readyz");
        assert_eq!(status, 503, "{response}");
        assert_eq!(body(&response), "no successful cycle yet\n");
        assert_eq!(header(&response, "connection"), Some("close"));

        // A cycle with a failure does not make it ready.
        let now = OffsetDateTime::now_utc();
        health.record_cycle(&report(&[("a", failed())], now + minutes(60)), now);
        assert_eq!(get(addr, "/readyz").0, 503);

        health.record_cycle(&report(&[("a", Outcome::Updated)], now + minutes(60)), now);
        let (status, response) = get(addr, "/readyz");
        assert_eq!(status, 200, "{response}");
        assert_eq!(body(&response), "ready\n");
        assert_eq!(header(&response, "content-length"), Some("6"));
        assert_eq!(
            header(&response, "content-type"),
            Some("text/plain; charset=utf-8")
        );

        // Ready stays ready.
        health.record_cycle(&report(&[("a", failed())], now + minutes(60)), now);
        assert_eq!(get(addr, "/readyz").0, 200);
    }

    #[test]
    fn healthz_over_http() {
        let health = Health::new();
        let addr = start(&health);
        let (status, response) = get(addr, "/healthz");
        assert_eq!(status, 200, "{response}");
        assert!(body(&response).starts_with("starting"), "{response}");

        let now = OffsetDateTime::now_utc();
        health.record_cycle(&report(&[("a", Outcome::Created)], now + minutes(60)), now);
        let (status, response) = get(addr, "/healthz");
        assert_eq!((status, body(&response)), (200, "ok\n"));

        health.record_cycle(&report(&[("a", Outcome::Created)], now + minutes(5)), now);
        let (status, response) = get(addr, "/healthz");
        assert_eq!(status, 503, "{response}");
        assert_eq!(body(&response).lines().count(), 1, "{response}");

        // HEAD: the headers with the GET's length, no body.
        let (status, response) = request(addr, b"HEAD /healthz HTTP/1.1\r\n\r\n");
        assert_eq!(status, 503, "{response}");
        assert_eq!(body(&response), "");
        let length: usize = header(&response, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(length > 10, "{response}");
    }

    #[test]
    fn healthz_follows_the_validity_of_every_target() {
        let health = Health::new();
        let now = t0();
        assert!(health.healthz(now).0);

        health.record_cycle(
            &report(
                &[("a", Outcome::Updated), ("b", Outcome::Unchanged)],
                now + minutes(60),
            ),
            now,
        );
        assert_eq!(health.healthz(now), (true, "ok".into()));
        assert_eq!(health.healthz(now + minutes(45)), (true, "ok".into()));

        let (ok, reason) = health.healthz(now + minutes(50));
        assert!(!ok);
        assert!(reason.starts_with("2 of 2 target namespaces"), "{reason}");
        assert!(reason.contains("a (expires in 600 s)"), "{reason}");
        assert!(reason.contains("b (expires in 600 s)"), "{reason}");
        let (ok, reason) = health.healthz(now + minutes(70));
        assert!(!ok);
        assert!(reason.contains("a (expired 600 s ago)"), "{reason}");

        // A new successful cycle brings it back.
        let later = now + minutes(50);
        health.record_cycle(
            &report(
                &[("a", Outcome::Updated), ("b", Outcome::Updated)],
                later + minutes(720),
            ),
            later,
        );
        assert_eq!(health.healthz(later), (true, "ok".into()));
    }

    #[test]
    fn a_failed_namespace_keeps_its_previous_validity() {
        let health = Health::new();
        let now = t0();
        health.record_cycle(
            &report(
                &[("a", Outcome::Updated), ("b", Outcome::Updated)],
                now + minutes(60),
            ),
            now,
        );
        // "b" fails with a newer token: it still holds the old one.
        let later = now + minutes(30);
        health.record_cycle(
            &report(
                &[("a", Outcome::Updated), ("b", failed()), ("c", failed())],
                later + minutes(720),
            ),
            later,
        );
        let (ok, reason) = health.healthz(later);
        assert!(!ok, "c never held a token");
        assert!(reason.starts_with("1 of 3 "), "{reason}");
        assert!(reason.contains("c (no token)"), "{reason}");
        assert!(!reason.contains("b ("), "{reason}");

        let (ok, reason) = health.healthz(now + minutes(50));
        assert!(!ok);
        assert!(reason.starts_with("2 of 3 "), "{reason}");
        assert!(
            reason.contains("c (no token), b (expires in 600 s)"),
            "{reason}"
        );

        // "c" is skipped now and "b" gone (deleted): only "a" is a target.
        health.record_cycle(
            &report(
                &[
                    ("a", Outcome::Unchanged),
                    ("c", Outcome::Skipped("no such secret".into())),
                ],
                later + minutes(720),
            ),
            later,
        );
        assert_eq!(health.healthz(later + minutes(60)), (true, "ok".into()));
        assert!(health.metrics(later).contains("\necrupdater_targets 1\n"));
    }

    #[test]
    fn healthz_names_only_the_first_few() {
        let health = Health::new();
        let now = t0();
        let outcomes: Vec<(String, Outcome)> =
            (0..10).map(|i| (format!("ns-{i}"), failed())).collect();
        health.record_cycle(
            &CycleReport {
                outcomes,
                duration: Duration::ZERO,
                token_expires_at: now + minutes(60),
            },
            now,
        );
        let (ok, reason) = health.healthz(now);
        assert!(!ok);
        assert_eq!(
            reason,
            "10 of 10 target namespaces hold no token valid for 15 more minutes: ns-0 (no token), ns-1 (no token), ns-2 (no token) and 7 more"
        );
    }

    #[test]
    fn zero_targets_after_a_successful_cycle_is_healthy() {
        let health = Health::new();
        let now = t0();
        health.record_cycle(&report(&[], now + minutes(60)), now);
        assert_eq!(health.healthz(now + minutes(600)), (true, "ok".into()));
        assert!(health.readyz().0);
        assert!(
            !health
                .metrics(now)
                .contains("\necrupdater_targets_valid_min_seconds ")
        );
    }

    /// Every sample line as (name, labels, value), checking the syntax on the way.
    fn parse_metrics(text: &str) -> Vec<(String, String, f64)> {
        assert!(text.ends_with('\n'));
        let mut samples = Vec::new();
        let mut typed = Vec::new();
        let mut helped = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                helped.push(rest.split(' ').next().unwrap_or_default().to_string());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split(' ');
                typed.push(parts.next().unwrap_or_default().to_string());
                assert!(matches!(parts.next(), Some("gauge" | "counter")), "{line}");
                continue;
            }
            assert!(!line.starts_with('#'), "{line}");
            let (series, value) = line.rsplit_once(' ').expect(line);
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => {
                    let labels = labels.strip_suffix('}').expect(line);
                    for pair in labels.split(',') {
                        let (label, quoted) = pair.split_once('=').expect(line);
                        assert!(
                            label
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                        );
                        assert!(
                            quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'),
                            "{line}"
                        );
                    }
                    (name, labels)
                }
                None => (series, ""),
            };
            assert!(name.starts_with("ecrupdater_"), "{line}");
            assert!(
                name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "{line}"
            );
            assert!(typed.iter().any(|t| t == name), "no TYPE before {line}");
            assert!(helped.iter().any(|h| h == name), "no HELP before {line}");
            samples.push((name.to_string(), labels.to_string(), value));
        }
        samples
    }

    fn value(samples: &[(String, String, f64)], name: &str, labels: &str) -> Option<f64> {
        samples
            .iter()
            .find(|(n, l, _)| n == name && l == labels)
            .map(|(_, _, v)| *v)
    }

    #[test]
    fn metrics_before_anything() {
        let health = Health::new();
        let samples = parse_metrics(&health.metrics(t0()));
        let v = |name: &str, labels: &str| value(&samples, name, labels);
        assert_eq!(
            v("ecrupdater_last_success_timestamp_seconds", ""),
            Some(0.0)
        );
        assert_eq!(
            v("ecrupdater_token_expiry_timestamp_seconds", ""),
            Some(0.0)
        );
        for result in ["created", "updated", "unchanged", "skipped", "failed"] {
            let labels = format!("result=\"{result}\"");
            assert_eq!(v("ecrupdater_secrets_total", &labels), Some(0.0));
        }
        assert_eq!(v("ecrupdater_errors_total", "stage=\"aws\""), Some(0.0));
        assert_eq!(v("ecrupdater_errors_total", "stage=\"kube\""), Some(0.0));
        assert_eq!(
            v("ecrupdater_cycles_total", "result=\"success\""),
            Some(0.0)
        );
        assert_eq!(
            v("ecrupdater_cycles_total", "result=\"failure\""),
            Some(0.0)
        );
        assert_eq!(v("ecrupdater_cycle_duration_seconds", ""), Some(0.0));
        assert_eq!(v("ecrupdater_targets", ""), Some(0.0));
        assert_eq!(v("ecrupdater_targets_valid_min_seconds", ""), None);
        assert_eq!(v("ecrupdater_ready", ""), Some(0.0));
        let build = format!("version=\"{}\"", env!("CARGO_PKG_VERSION"));
        assert_eq!(v("ecrupdater_build_info", &build), Some(1.0));
    }

    #[test]
    fn metrics_after_cycles() {
        let health = Health::new();
        let now = t0();
        let expires = now + minutes(720);
        health.record_cycle(
            &report(
                &[
                    ("a", Outcome::Created),
                    ("b", Outcome::Updated),
                    ("c", Outcome::Unchanged),
                    ("d", Outcome::Skipped("type Opaque".into())),
                    ("e", failed()),
                ],
                expires,
            ),
            now,
        );
        health.record_cycle(
            &report(
                &[("a", Outcome::Unchanged), ("b", Outcome::Updated)],
                expires,
            ),
            now + minutes(10),
        );
        health.record_cycle_failure();
        health.record_error(Stage::Aws);
        health.record_error(Stage::Kube);
        health.record_error(Stage::Kube);
        health.set_api_requests(BTreeMap::from([(0, 2), (200, 40), (409, 1)]));

        let text = health.metrics(now + minutes(20));
        let samples = parse_metrics(&text);
        let v = |name: &str, labels: &str| value(&samples, name, labels);
        assert_eq!(
            v("ecrupdater_last_success_timestamp_seconds", ""),
            Some(1_700_000_600.0)
        );
        assert_eq!(
            v("ecrupdater_token_expiry_timestamp_seconds", ""),
            Some(1_700_043_200.0)
        );
        for (result, n) in [
            ("created", 1.0),
            ("updated", 2.0),
            ("unchanged", 2.0),
            ("skipped", 1.0),
            ("failed", 1.0),
        ] {
            let labels = format!("result=\"{result}\"");
            assert_eq!(v("ecrupdater_secrets_total", &labels), Some(n), "{result}");
        }
        assert_eq!(v("ecrupdater_errors_total", "stage=\"aws\""), Some(1.0));
        assert_eq!(v("ecrupdater_errors_total", "stage=\"kube\""), Some(2.0));
        assert_eq!(
            v("ecrupdater_api_requests_total", "code=\"none\""),
            Some(2.0)
        );
        assert_eq!(
            v("ecrupdater_api_requests_total", "code=\"200\""),
            Some(40.0)
        );
        assert_eq!(
            v("ecrupdater_api_requests_total", "code=\"409\""),
            Some(1.0)
        );
        assert_eq!(v("ecrupdater_cycle_duration_seconds", ""), Some(1.5));
        assert_eq!(
            v("ecrupdater_cycles_total", "result=\"success\""),
            Some(1.0)
        );
        assert_eq!(
            v("ecrupdater_cycles_total", "result=\"failure\""),
            Some(2.0)
        );
        assert_eq!(v("ecrupdater_targets", ""), Some(2.0));
        assert_eq!(
            v("ecrupdater_targets_valid_min_seconds", ""),
            Some(700.0 * 60.0)
        );
        assert_eq!(v("ecrupdater_ready", ""), Some(1.0));

        // Expired: negative.
        let samples = parse_metrics(&health.metrics(expires + minutes(1)));
        assert_eq!(
            value(&samples, "ecrupdater_targets_valid_min_seconds", ""),
            Some(-60.0)
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        sample(&mut out, "m", &[("a", "x\\y\"z\nw"), ("b", "ok")], "1");
        assert_eq!(out, "m{a=\"x\\\\y\\\"z\\nw\",b=\"ok\"} 1\n");
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(0.25), "0.25");
    }

    #[test]
    fn metrics_over_http() {
        let health = Health::new();
        let addr = start(&health);
        let (status, response) = get(addr, "/metrics?x=1");
        assert_eq!(status, 200, "{response}");
        assert_eq!(
            header(&response, "content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        let body = body(&response);
        assert_eq!(
            header(&response, "content-length"),
            Some(body.len().to_string().as_str())
        );
        let samples = parse_metrics(body);
        assert_eq!(value(&samples, "ecrupdater_ready", ""), Some(0.0));
    }

    #[test]
    fn bad_requests() {
        let health = Health::new();
        let addr = start(&health);
        for bad in [
            &b"garbage\r\n\r\n"[..],
            b"GET /healthz\r\n\r\n",
            b"GET  /healthz HTTP/1.1\r\n\r\n",
            b"GET healthz HTTP/1.1\r\n\r\n",
            b"GET /healthz HTTP/2.0\r\n\r\n",
            b"G(T /healthz HTTP/1.1\r\n\r\n",
            b"GET /\xff HTTP/1.1\r\n\r\n",
            b"\r\n\r\n",
        ] {
            let (status, response) = request(addr, bad);
            assert_eq!(
                status,
                400,
                "{:?}: {response}",
                String::from_utf8_lossy(bad)
            );
            assert_eq!(header(&response, "connection"), Some("close"));
        }
        let mut huge = b"GET /healthz HTTP/1.1\r\nX: ".to_vec();
        huge.resize(MAX_HEAD + 100, b'a');
        assert_eq!(request(addr, &huge).0, 400);

        assert_eq!(get(addr, "/nope").0, 404);
        assert_eq!(get(addr, "/").0, 404);
        assert_eq!(request(addr, b"POST /nope HTTP/1.1\r\n\r\n").0, 404);
        let (status, response) = request(
            addr,
            b"POST /healthz HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        );
        assert_eq!(status, 405, "{response}");
        assert_eq!(header(&response, "allow"), Some("GET, HEAD"));
        assert_eq!(request(addr, b"DELETE /metrics HTTP/1.0\n\n").0, 405);
        // Bare line feeds are fine.
        assert_eq!(request(addr, b"GET /readyz HTTP/1.0\n\n").0, 503);
        // A client that closes at once changes nothing.
        drop(TcpStream::connect(addr).expect("connect"));
        assert_eq!(get(addr, "/readyz").0, 503);
    }

    #[test]
    fn a_silent_client_does_not_block_the_others() {
        let health = Health::new();
        let addr = start(&health);
        let _silent = TcpStream::connect(addr).expect("connect");
        thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        assert_eq!(get(addr, "/readyz").0, 503);
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn a_trickling_client_does_not_block_the_others() {
        let health = Health::new();
        let addr = start(&health);
        let trickler = thread::spawn(move || {
            let mut stream = TcpStream::connect(addr).expect("connect");
            for _ in 0..8 {
                if stream.write_all(b"G").is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(400));
            }
        });
        thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        assert_eq!(get(addr, "/readyz").0, 503);
        assert!(started.elapsed() < Duration::from_secs(3));
        let _ = trickler.join();
    }
}
