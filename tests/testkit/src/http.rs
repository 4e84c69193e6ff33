//! A tiny blocking HTTP/1.1 server on std sockets: one accept thread on 127.0.0.1:0, one thread per
//! connection, keep-alive, request bodies by Content-Length or chunked, fixed-length responses and
//! chunked streams, optional TLS (rustls). Malformed requests get a 400 and the connection is closed;
//! nothing read from the network can panic the server. Stopping shuts every open socket down.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 64 * 1024 * 1024;

/// One parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path part of the target, still percent-encoded.
    pub path: String,
    /// The raw query string (without `?`), still percent-encoded.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// First header with that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Decoded query parameters, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        parse_query(&self.query)
    }

    /// The last value of a query parameter, decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// Decodes an `application/x-www-form-urlencoded` style query string.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
            None => (percent_decode(p, true), String::new()),
        })
        .collect()
}

/// Percent-decodes; `plus` turns `+` into a space (query strings). Invalid escapes are kept as is.
pub fn percent_decode(s: &str, plus: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A request as a fake saw it (for assertions in tests).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    /// Path without the query, as sent (percent-encoded).
    pub path: String,
    /// Raw query string without `?` (percent-encoded); empty when none.
    pub query: String,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub host: Option<String>,
    /// The body, decoded as UTF-8 (lossy).
    pub body: String,
    /// Every header, in order, as sent.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    pub fn from_request(req: &Request) -> RecordedRequest {
        RecordedRequest {
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query.clone(),
            content_type: req.header("Content-Type").map(str::to_string),
            authorization: req.header("Authorization").map(str::to_string),
            host: req.header("Host").map(str::to_string),
            body: String::from_utf8_lossy(&req.body).into_owned(),
            headers: req.headers.clone(),
        }
    }

    /// First header with that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The last value of a decoded query parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        parse_query(&self.query)
            .into_iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// True for `GET ...?watch=true` (or `watch=1`).
    pub fn is_watch(&self) -> bool {
        self.method == "GET" && matches!(self.param("watch").as_deref(), Some("true" | "1"))
    }
}

/// A complete response with a body of known length.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn json(status: u16, v: &serde_json::Value) -> Response {
        Response::new(status, "application/json", v.to_string())
    }

    pub fn with_header(mut self, k: &str, v: &str) -> Response {
        self.headers.push((k.into(), v.into()));
        self
    }
}

/// Writes the chunks of a streamed (chunked) response.
pub struct ChunkWriter<'a> {
    out: &'a mut dyn Write,
    probe: Option<&'a TcpStream>,
}

impl ChunkWriter<'_> {
    /// False once the peer has closed the connection (checked without blocking; plain TCP only,
    /// a TLS peer is noticed at the next write).
    pub fn peer_alive(&self) -> bool {
        let Some(s) = self.probe else {
            return true;
        };
        // This thread is the only user of the socket while it streams, so flipping it to
        // non-blocking for one peek is safe.
        if s.set_nonblocking(true).is_err() {
            return true;
        }
        let mut b = [0u8; 1];
        let alive = match s.peek(&mut b) {
            Ok(0) => false,
            Ok(_) => true,
            Err(e) => matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
            ),
        };
        let _ = s.set_nonblocking(false);
        alive
    }

    /// Sends one chunk and flushes it.
    pub fn chunk(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        write!(self.out, "{:x}\r\n", data.len())?;
        self.out.write_all(data)?;
        self.out.write_all(b"\r\n")?;
        self.out.flush()
    }
}

/// A streamed body producer: runs on the connection thread until it returns.
pub type StreamFn = Box<dyn FnOnce(&mut ChunkWriter<'_>) -> io::Result<()> + Send>;

/// What a handler wants done with a request.
pub enum Reply {
    Full(Response),
    /// Status + headers now, then a chunked body produced by the closure.
    Stream {
        status: u16,
        headers: Vec<(String, String)>,
        body: StreamFn,
    },
    /// Close the connection without answering.
    Reset,
}

pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: Request) -> Reply;
}

struct Shared {
    stop: AtomicBool,
    conns: Mutex<HashMap<u64, TcpStream>>,
    next_id: AtomicU64,
}

/// A running server. Dropping it stops the server and shuts every connection down.
pub struct Server {
    port: u16,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds 127.0.0.1:`port` (0 = any free port) and serves `handler` until dropped.
    pub fn start(
        port: u16,
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: Arc<dyn Handler>,
    ) -> io::Result<Server> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        });
        let sh = shared.clone();
        let accept = std::thread::Builder::new()
            .name(format!("http-accept-{port}"))
            .spawn(move || accept_loop(listener, sh, tls, handler))?;
        Ok(Server {
            port,
            shared,
            accept: Some(accept),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Unblock accept().
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let conns: Vec<TcpStream> = self
            .shared
            .conns
            .lock()
            .unwrap()
            .drain()
            .map(|(_, s)| s)
            .collect();
        for c in conns {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: Arc<dyn Handler>,
) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = conn else { continue };
        let _ = stream.set_nodelay(true);
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            shared.conns.lock().unwrap().insert(id, clone);
        }
        let sh = shared.clone();
        let handler = handler.clone();
        let tls = tls.clone();
        let spawned = std::thread::Builder::new()
            .name("http-conn".into())
            .spawn(move || {
                match tls {
                    None => {
                        let probe = stream.try_clone().ok();
                        serve_conn(stream, &*handler, probe.as_ref());
                    }
                    Some(cfg) => {
                        if let Ok(sc) = rustls::ServerConnection::new(cfg) {
                            serve_conn(rustls::StreamOwned::new(sc, stream), &*handler, None);
                        }
                    }
                }
                sh.conns.lock().unwrap().remove(&id);
            });
        if spawned.is_err() {
            shared.conns.lock().unwrap().remove(&id);
        }
    }
}

enum ReadError {
    /// Connection closed cleanly between requests, or an I/O error: just close.
    Closed,
    /// Malformed request: answer 400 and close.
    Bad(String),
}

fn serve_conn<S: Read + Write>(stream: S, handler: &dyn Handler, probe: Option<&TcpStream>) {
    let mut reader = BufReader::new(stream);
    loop {
        let (req, keep_alive) = match read_request(&mut reader) {
            Ok(r) => r,
            Err(ReadError::Closed) => return,
            Err(ReadError::Bad(msg)) => {
                let body = serde_json::json!({
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": msg, "reason": "BadRequest", "code": 400
                });
                let mut resp = Response::json(400, &body);
                resp.headers.push(("Connection".into(), "close".into()));
                let _ = write_response(reader.get_mut(), &resp);
                return;
            }
        };
        match handler.handle(req) {
            Reply::Reset => return,
            Reply::Full(mut resp) => {
                if !keep_alive {
                    resp.headers.push(("Connection".into(), "close".into()));
                }
                if write_response(reader.get_mut(), &resp).is_err() || !keep_alive {
                    return;
                }
            }
            Reply::Stream {
                status,
                headers,
                body,
            } => {
                let out = reader.get_mut();
                let mut head = format!("HTTP/1.1 {} {}\r\n", status, reason_phrase(status));
                for (k, v) in &headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("Transfer-Encoding: chunked\r\n");
                if !keep_alive {
                    head.push_str("Connection: close\r\n");
                }
                head.push_str("\r\n");
                if out
                    .write_all(head.as_bytes())
                    .and_then(|_| out.flush())
                    .is_err()
                {
                    return;
                }
                let mut cw = ChunkWriter { out, probe };
                if body(&mut cw).is_err() {
                    return;
                }
                if out
                    .write_all(b"0\r\n\r\n")
                    .and_then(|_| out.flush())
                    .is_err()
                    || !keep_alive
                {
                    return;
                }
            }
        }
    }
}

fn write_response(out: &mut dyn Write, resp: &Response) -> io::Result<()> {
    let mut buf = format!(
        "HTTP/1.1 {} {}\r\n",
        resp.status,
        reason_phrase(resp.status)
    )
    .into_bytes();
    for (k, v) in &resp.headers {
        buf.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    buf.extend_from_slice(format!("Content-Length: {}\r\n\r\n", resp.body.len()).as_bytes());
    buf.extend_from_slice(&resp.body);
    out.write_all(&buf)?;
    out.flush()
}

/// Reads one line ending in LF (CRLF accepted), bounded by `limit` bytes.
fn read_line<R: BufRead>(r: &mut R, limit: &mut usize) -> Result<Option<String>, ReadError> {
    let mut line = Vec::new();
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(ReadError::Closed),
        };
        if buf.is_empty() {
            return if line.is_empty() {
                Ok(None)
            } else {
                Err(ReadError::Closed)
            };
        }
        let (take, done) = match buf.iter().position(|&c| c == b'\n') {
            Some(p) => (p + 1, true),
            None => (buf.len(), false),
        };
        if take > *limit {
            return Err(ReadError::Bad("request header too large".into()));
        }
        *limit -= take;
        line.extend_from_slice(&buf[..take]);
        r.consume(take);
        if done {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return String::from_utf8(line)
                .map(Some)
                .map_err(|_| ReadError::Bad("request header is not UTF-8".into()));
        }
    }
}

fn read_request<S: Read + Write>(r: &mut BufReader<S>) -> Result<(Request, bool), ReadError> {
    let mut limit = MAX_HEAD;
    // Skip stray empty lines between requests (RFC 9112 2.2).
    let start = loop {
        match read_line(r, &mut limit)? {
            None => return Err(ReadError::Closed),
            Some(l) if l.is_empty() => continue,
            Some(l) => break l,
        }
    };
    let mut parts = start.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad(format!("malformed request line: {start:?}")));
    };
    if method.is_empty() || !method.bytes().all(|c| c.is_ascii_alphabetic()) {
        return Err(ReadError::Bad("malformed method".into()));
    }
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => {
            return Err(ReadError::Bad(format!(
                "unsupported HTTP version {version:?}"
            )));
        }
    };
    if !target.starts_with('/') {
        return Err(ReadError::Bad(format!(
            "unsupported request target {target:?}"
        )));
    }
    let mut headers = Vec::new();
    loop {
        let Some(line) = read_line(r, &mut limit)? else {
            return Err(ReadError::Closed);
        };
        if line.is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once(':') else {
            return Err(ReadError::Bad(format!("malformed header line: {line:?}")));
        };
        if k.is_empty() || k.contains(' ') {
            return Err(ReadError::Bad(format!("malformed header name: {k:?}")));
        }
        headers.push((k.to_string(), v.trim().to_string()));
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let connection = get("Connection").unwrap_or_default().to_ascii_lowercase();
    let keep_alive = if http11 {
        !connection.split(',').any(|t| t.trim() == "close")
    } else {
        connection.split(',').any(|t| t.trim() == "keep-alive")
    };
    if get("Expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue")) && http11 {
        let out = r.get_mut();
        if out
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .and_then(|_| out.flush())
            .is_err()
        {
            return Err(ReadError::Closed);
        }
    }
    let chunked = get("Transfer-Encoding")
        .map(|te| te.to_ascii_lowercase().contains("chunked"))
        .unwrap_or(false);
    let body = if chunked {
        read_chunked(r)?
    } else if let Some(cl) = get("Content-Length") {
        let n: usize = cl
            .trim()
            .parse()
            .map_err(|_| ReadError::Bad(format!("invalid Content-Length {cl:?}")))?;
        if n > MAX_BODY {
            return Err(ReadError::Bad("request body too large".into()));
        }
        let mut body = vec![0u8; n];
        r.read_exact(&mut body).map_err(|_| ReadError::Closed)?;
        body
    } else {
        Vec::new()
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.to_string(), String::new()),
    };
    Ok((
        Request {
            method: method.to_string(),
            path,
            query,
            headers,
            body,
        },
        keep_alive,
    ))
}

fn read_chunked<R: BufRead>(r: &mut R) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let mut limit = 4096;
        let Some(line) = read_line(r, &mut limit)? else {
            return Err(ReadError::Closed);
        };
        let size_str = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_str, 16)
            .map_err(|_| ReadError::Bad(format!("invalid chunk size {size_str:?}")))?;
        if body.len() + size > MAX_BODY {
            return Err(ReadError::Bad("request body too large".into()));
        }
        if size == 0 {
            // Trailers until an empty line.
            let mut limit = MAX_HEAD;
            loop {
                match read_line(r, &mut limit)? {
                    None => return Err(ReadError::Closed),
                    Some(l) if l.is_empty() => return Ok(body),
                    Some(_) => {}
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])
            .map_err(|_| ReadError::Closed)?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf).map_err(|_| ReadError::Closed)?;
        if &crlf != b"\r\n" {
            return Err(ReadError::Bad("chunk not followed by CRLF".into()));
        }
    }
}

pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        410 => "Gone",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
