//! The HTTP endpoint: [`serve`] binds the address and runs one thread that serves every
//! connection at once without blocking on any of them. The listener and every socket are
//! non-blocking; each turn of the loop accepts what is waiting, then moves every open connection
//! on as far as it can without waiting (read the request head, write the answer, linger), and
//! sleeps [`TICK`] only when nothing moved. With no connection open, the thread waits in a
//! blocking `accept`, so an idle endpoint costs nothing.
//!
//! The bounds: at most [`MAX_CONNECTIONS`] open connections; a new one beyond drops the oldest,
//! but only once that one had [`GRACE`] to send its head (until then the new ones wait in the
//! kernel's accept queue), so that clients reconnecting as fast as they are dropped cannot push
//! out a probe before its request arrives. Each connection gets [`IO_TIMEOUT`] from its accept
//! to read its head and write its answer, and [`LINGER`] after that; a head is at most
//! [`MAX_HEAD`] bytes (else 400). So silent or trickling clients cost at most
//! `MAX_CONNECTIONS * MAX_HEAD` bytes and delay nobody for long: a probe waits at most about a
//! [`GRACE`] in the queue, and is answered within a few [`TICK`]s once accepted.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::{Health, IO_TIMEOUT, MAX_HEAD};

/// How long to wait, after answering, for the client to close (so unread request bytes do not
/// turn the close into a reset that loses the response).
const LINGER: Duration = Duration::from_millis(250);
/// The most connections open at once; a new one beyond drops the oldest.
pub const MAX_CONNECTIONS: usize = 32;
/// How long a new connection is kept whatever arrives after it: time enough for any client
/// that means to send a request (a probe sends it right after connecting).
const GRACE: Duration = Duration::from_millis(25);
/// The most reads or writes one connection gets per turn of the loop.
const MAX_IO_PER_TURN: usize = 16;
/// How long the loop sleeps when no connection moved.
pub const TICK: Duration = Duration::from_millis(2);

/// Binds `addr` (such as `0.0.0.0:8080`, or `127.0.0.1:0` for any free port) and answers
/// `/healthz`, `/readyz` and `/metrics` from `health` on one thread named `health`. Returns the
/// bound address and the thread, which runs until the process ends.
pub fn serve(addr: &str, health: Health) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    let handle = thread::Builder::new()
        .name("health".into())
        .spawn(move || serve_loop(&listener, &health))?;
    log::debug!("health endpoint listening on {bound}");
    Ok((bound, handle))
}

fn serve_loop(listener: &TcpListener, health: &Health) {
    let mut open: VecDeque<Connection> = VecDeque::new();
    loop {
        if open.is_empty() {
            // Nothing to move on: wait for the next client without spinning.
            if listener.set_nonblocking(false).is_ok() {
                match listener.accept() {
                    Ok((stream, peer)) => add(&mut open, stream, peer),
                    Err(e) => accept_failed(&e),
                }
            }
            if listener.set_nonblocking(true).is_err() {
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        }
        // Take what is waiting, at most a cap's worth per turn (so a flood cannot push out a
        // connection before it is read once), and none while the table is full of connections
        // still in their grace: those left wait in the kernel's accept queue.
        for _ in 0..MAX_CONNECTIONS {
            if !has_room(&open, Instant::now()) {
                break;
            }
            match listener.accept() {
                Ok((stream, peer)) => add(&mut open, stream, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    accept_failed(&e);
                    break;
                }
            }
        }
        let now = Instant::now();
        let mut moved = false;
        for connection in open.iter_mut() {
            moved |= connection.step(health, now);
        }
        open.retain(|c| !c.done);
        if !moved {
            thread::sleep(TICK);
        }
    }
}

fn accept_failed(e: &io::Error) {
    log::debug!("health: accept: {e}");
    // Out of file descriptors and the like: do not spin.
    thread::sleep(Duration::from_millis(100));
}

/// Whether one more connection may be accepted now: there is a free place, or the oldest
/// connection (the first, as they are kept in the order they came) had its [`GRACE`].
fn has_room(open: &VecDeque<Connection>, now: Instant) -> bool {
    open.len() < MAX_CONNECTIONS
        || open
            .front()
            .is_none_or(|oldest| now.saturating_duration_since(oldest.accepted) >= GRACE)
}

/// Adds a new connection, dropping the oldest when [`MAX_CONNECTIONS`] are open.
fn add(open: &mut VecDeque<Connection>, stream: TcpStream, peer: SocketAddr) {
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let _ = stream.set_nodelay(true);
    while open.len() >= MAX_CONNECTIONS {
        if let Some(oldest) = open.pop_front() {
            log::debug!(
                "health: {MAX_CONNECTIONS} connections open, dropping the oldest ({})",
                oldest.peer
            );
        }
    }
    let accepted = Instant::now();
    open.push_back(Connection {
        stream,
        peer,
        accepted,
        deadline: accepted + IO_TIMEOUT,
        phase: Phase::Reading(Vec::new()),
        done: false,
    });
}

/// One client connection and how far it got.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    /// When it was accepted.
    accepted: Instant,
    /// When reading the head and writing the answer must be over.
    deadline: Instant,
    phase: Phase,
    done: bool,
}

enum Phase {
    /// Reading the request head (what came so far).
    Reading(Vec<u8>),
    /// Writing the answer (all of it, and how much is written).
    Writing(Vec<u8>, usize),
    /// Answered; reading and dropping what the client still sends until it closes, or until then.
    Lingering(Instant),
}

impl Connection {
    /// Moves the connection on as far as it goes without waiting. Returns whether anything moved.
    fn step(&mut self, health: &Health, now: Instant) -> bool {
        match self.try_step(health, now) {
            Ok(moved) => moved,
            Err(e) => {
                log::debug!("health: connection from {}: {e}", self.peer);
                self.done = true;
                true
            }
        }
    }

    fn try_step(&mut self, health: &Health, now: Instant) -> io::Result<bool> {
        let mut moved = false;
        // At most this many reads or writes per turn, so a client that sends without pause
        // (while lingering) cannot keep the thread from the others.
        for _ in 0..MAX_IO_PER_TURN {
            match &mut self.phase {
                Phase::Reading(head) => {
                    if now >= self.deadline {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "request head not complete in time",
                        ));
                    }
                    let mut chunk = [0u8; 1024];
                    let room = (MAX_HEAD - head.len()).min(chunk.len());
                    let n = match self.stream.read(chunk.get_mut(..room).unwrap_or_default()) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(moved),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    };
                    moved = true;
                    if n == 0 {
                        self.done = true;
                        return if head.is_empty() {
                            Ok(true)
                        } else {
                            Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "client closed in the middle of the request head",
                            ))
                        };
                    }
                    head.extend_from_slice(chunk.get(..n).unwrap_or_default());
                    let answer = if let Some(end) = head_end(head) {
                        let (response, head_only) =
                            route(head.get(..end).unwrap_or_default(), health);
                        Some(response_bytes(&response, head_only))
                    } else if head.len() >= MAX_HEAD {
                        Some(response_bytes(
                            &Response::text(400, "request head too large"),
                            false,
                        ))
                    } else {
                        None
                    };
                    if let Some(bytes) = answer {
                        self.phase = Phase::Writing(bytes, 0);
                    }
                }
                Phase::Writing(bytes, written) => {
                    if now >= self.deadline {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "answer not taken in time",
                        ));
                    }
                    match self.stream.write(bytes.get(*written..).unwrap_or_default()) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => {
                            moved = true;
                            *written += n;
                            if *written >= bytes.len() {
                                // Signal the end, then give the client a moment to close first.
                                let _ = self.stream.shutdown(Shutdown::Write);
                                self.phase = Phase::Lingering(now + LINGER);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(moved),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Phase::Lingering(until) => {
                    if now >= *until {
                        self.done = true;
                        return Ok(true);
                    }
                    let mut sink = [0u8; 1024];
                    match self.stream.read(&mut sink) {
                        Ok(0) => {
                            self.done = true;
                            return Ok(true);
                        }
                        Ok(_) => moved = true,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(moved),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => {
                            self.done = true;
                            return Ok(true);
                        }
                    }
                }
            }
        }
        Ok(moved)
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

/// The whole answer: status line, headers and (unless for HEAD) the body.
fn response_bytes(response: &Response, head_only: bool) -> Vec<u8> {
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
    out.into_bytes()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::metrics::tests::{parse_metrics, value};
    use crate::health::tests::{failed, minutes, report};
    use crate::refresh::Outcome;

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

    #[test]
    fn a_client_that_never_stops_sending_does_not_hold_the_thread() {
        let health = Health::new();
        let addr = start(&health);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flood = {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).expect("connect");
                let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\n\r\n");
                let junk = [b'x'; 64 * 1024];
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if stream.write_all(&junk).is_err() {
                        return;
                    }
                }
            })
        };
        thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        assert_eq!(get(addr, "/readyz").0, 503);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = flood.join();
    }
}
