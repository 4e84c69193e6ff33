//! Hostile Kubernetes API servers for `tests/hostile_kube.rs`: a raw HTTP/1.1 listener on
//! 127.0.0.1 whose handler writes whatever bytes it likes to the socket (endless chunked bodies,
//! lines without end, broken JSON, huge Status objects), and a TLS listener that only completes
//! handshakes. Both record what reached them: every request's method and path, and every
//! connection.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where the RBAC preflight sends its SelfSubjectAccessReviews.
const ACCESS_REVIEWS: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
/// Where Warning Events go (`/apis/events.k8s.io/v1/namespaces/NS/events`).
const EVENTS: &str = "/apis/events.k8s.io/";

/// A request as the hostile server saw it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// `GET`, `POST`...
    pub method: String,
    /// The request target as sent.
    pub path: String,
}

/// A raw listener on 127.0.0.1; each connection carries one request, then the handler's bytes.
pub struct HostileApi {
    /// The port it listens on.
    pub port: u16,
    requests: Arc<Mutex<Vec<SeenRequest>>>,
    connections: Arc<AtomicUsize>,
}

impl HostileApi {
    /// Serves each request with `handler`, which writes the whole answer (head and body) and
    /// gets the number of earlier requests with the same path.
    pub fn start(
        handler: impl Fn(&SeenRequest, usize, &mut TcpStream) + Send + Sync + 'static,
    ) -> HostileApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests: Arc<Mutex<Vec<SeenRequest>>> = Arc::default();
        let connections = Arc::new(AtomicUsize::new(0));
        let handler = Arc::new(handler);
        let (recorded, counted) = (Arc::clone(&requests), Arc::clone(&connections));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                let (handler, recorded) = (Arc::clone(&handler), Arc::clone(&recorded));
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                    let Some(request) = read_request(&mut stream) else {
                        return;
                    };
                    let earlier = {
                        let mut all = recorded.lock().expect("requests");
                        let earlier = all.iter().filter(|r| r.path == request.path).count();
                        all.push(request.clone());
                        earlier
                    };
                    handler(&request, earlier, &mut stream);
                    let _ = stream.flush();
                });
            }
        });
        HostileApi {
            port,
            requests,
            connections,
        }
    }

    /// A TLS listener presenting `config`'s certificate: it counts connections, drives the
    /// handshake, and answers nothing.
    pub fn start_tls(config: Arc<rustls::ServerConfig>) -> HostileApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                let config = Arc::clone(&config);
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let Ok(conn) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    let mut tls = rustls::StreamOwned::new(conn, stream);
                    let mut buf = [0u8; 1024];
                    let _ = tls.read(&mut buf);
                });
            }
        });
        HostileApi {
            port,
            requests: Arc::default(),
            connections,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request so far, but the RBAC preflight's SelfSubjectAccessReviews: those are
    /// questions about the caller's rights that store nothing and read no object (this server
    /// answers them 404, as a server without the API would, so the preflight is skipped).
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.requests
            .lock()
            .expect("requests")
            .iter()
            .filter(|r| r.path != ACCESS_REVIEWS)
            .cloned()
            .collect()
    }

    /// Requests whose path starts with `prefix` (any method).
    pub fn count(&self, prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .count()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Fails the test if any request could have written a Secret or a ServiceAccount (a Warning
    /// Event reporting the failure is allowed).
    pub fn assert_nothing_written(&self) {
        let writes: Vec<SeenRequest> = self
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET" && !r.path.starts_with(EVENTS))
            .collect();
        assert!(writes.is_empty(), "writes reached the server: {writes:?}");
    }
}

/// Reads one request head (byte by byte) and its Content-Length body.
fn read_request(stream: &mut TcpStream) -> Option<SeenRequest> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).ok()?;
    let mut first = head.split("\r\n").next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let length: usize = head
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length.min(16 * 1024 * 1024)];
    stream.read_exact(&mut body).ok()?;
    Some(SeenRequest { method, path })
}

/// Writes a whole answer with a Content-Length.
pub fn respond(stream: &mut TcpStream, status: u16, content_type: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status} Answer\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

/// Writes a JSON answer.
pub fn respond_json(stream: &mut TcpStream, status: u16, body: &serde_json::Value) {
    respond(
        stream,
        status,
        "application/json",
        body.to_string().as_bytes(),
    );
}

/// Writes a head announcing `length` bytes, then `prefix`, `length - prefix - suffix` bytes of
/// `filler` produced as they are sent, then `suffix`: a huge answer that never sits in this
/// process's memory. Stops when the client hangs up.
pub fn respond_huge(
    stream: &mut TcpStream,
    status: u16,
    prefix: &[u8],
    filler: &[u8],
    length: usize,
    suffix: &[u8],
) {
    let head = format!(
        "HTTP/1.1 {status} Answer\r\nContent-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(head.as_bytes()).is_err() || stream.write_all(prefix).is_err() {
        return;
    }
    let mut left = length - prefix.len() - suffix.len();
    let block: Vec<u8> = filler.iter().copied().cycle().take(64 * 1024).collect();
    while left > 0 {
        let n = left.min(block.len());
        if stream.write_all(&block[..n]).is_err() {
            return;
        }
        left -= n;
    }
    let _ = stream.write_all(suffix);
}

/// Writes a chunked 200 head, `prefix`, then `filler` chunks until `limit` bytes or until the
/// client hangs up (an endless body, as far as the client can tell).
pub fn respond_chunked_endless(stream: &mut TcpStream, prefix: &[u8], filler: &[u8], limit: usize) {
    let head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let chunk = |stream: &mut TcpStream, data: &[u8]| -> bool {
        stream
            .write_all(format!("{:x}\r\n", data.len()).as_bytes())
            .and_then(|_| stream.write_all(data))
            .and_then(|_| stream.write_all(b"\r\n"))
            .is_ok()
    };
    if !chunk(stream, prefix) {
        return;
    }
    let block: Vec<u8> = filler.iter().copied().cycle().take(64 * 1024).collect();
    let mut sent = 0;
    while sent < limit {
        if !chunk(stream, &block) {
            return;
        }
        sent += block.len();
    }
    let _ = stream.write_all(b"0\r\n\r\n");
}
