//! Hostile AWS-side peers for tests/hostile_aws.rs and tests/config_refused.rs: a server on
//! 127.0.0.1 whose handler writes the raw answer itself (so it can stream a body far larger
//! than the test ever holds, send bytes that are not UTF-8, or lie in its headers), recording
//! every request; and the checks those tests share (no 16-character piece of a credential in
//! the output).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request a [`HostileServer`] received.
#[derive(Debug, Clone)]
pub struct HostileRequest {
    /// `GET`, `PUT`, `POST`...
    pub method: String,
    /// The request target as sent (origin form, or absolute form through a proxy).
    pub target: String,
    /// The body (Content-Length bytes, at most 1 MiB).
    pub body: String,
}

type Handler = dyn Fn(&HostileRequest, &mut TcpStream) + Send + Sync;

/// A server on 127.0.0.1 whose handler writes each answer to the connection itself.
pub struct HostileServer {
    /// The port it listens on.
    pub port: u16,
    requests: Arc<Mutex<Vec<HostileRequest>>>,
    stop: Arc<AtomicBool>,
}

impl HostileServer {
    /// Starts serving; each connection gets one request and one answer, then is closed.
    pub fn start(
        handler: impl Fn(&HostileRequest, &mut TcpStream) + Send + Sync + 'static,
    ) -> HostileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind hostile server");
        let port = listener.local_addr().expect("addr").port();
        let requests: Arc<Mutex<Vec<HostileRequest>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (recorded, stopping) = (Arc::clone(&requests), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let (handler, recorded) = (Arc::clone(&handler), Arc::clone(&recorded));
                std::thread::spawn(move || {
                    let _ = stream.set_nodelay(true);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
                    let Some(request) = read_request(&mut stream) else {
                        return;
                    };
                    recorded.lock().expect("requests").push(request.clone());
                    handler(&request, &mut stream);
                    let _ = stream.flush();
                });
            }
        });
        HostileServer {
            port,
            requests,
            stop,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<HostileRequest> {
        self.requests.lock().expect("requests").clone()
    }

    /// How many requests so far.
    pub fn count(&self) -> usize {
        self.requests.lock().expect("requests").len()
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn read_request(stream: &mut TcpStream) -> Option<HostileRequest> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 * 1024 || stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let mut lines = head.lines();
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
    let length: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length.min(1024 * 1024)];
    stream.read_exact(&mut body).ok()?;
    Some(HostileRequest {
        method,
        target,
        body: String::from_utf8_lossy(&body).to_string(),
    })
}

/// Writes a whole answer.
pub fn answer(stream: &mut TcpStream, status: u16, content_type: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status} Answer\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

/// Writes an answer announcing `total` bytes: `prefix`, then `filler` repeated, until `total`
/// bytes are sent or the client hangs up (which a bounded client does early). The test process
/// never holds more than one filler block.
pub fn stream_answer(
    stream: &mut TcpStream,
    content_type: &str,
    total: u64,
    prefix: &[u8],
    filler: &[u8],
) {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(head.as_bytes()).is_err() || stream.write_all(prefix).is_err() {
        return;
    }
    let block: Vec<u8> = filler.iter().copied().cycle().take(64 * 1024).collect();
    let mut sent = prefix.len() as u64;
    while sent < total {
        let n = (total - sent).min(block.len() as u64) as usize;
        if stream.write_all(&block[..n]).is_err() {
            return;
        }
        sent += n as u64;
    }
}

/// Fails the test if `text` holds any `piece`-character piece of any of `secrets`.
pub fn assert_no_piece_of(text: &str, secrets: &[&str], piece: usize) {
    for secret in secrets {
        assert!(secret.len() >= piece, "a test secret shorter than {piece}");
        let bytes = secret.as_bytes();
        for start in 0..=bytes.len() - piece {
            let window = &secret[start..start + piece];
            assert!(
                !text.contains(window),
                "a {piece}-character piece of a credential ({}...) appears in the output:\n{text}",
                &window[..4]
            );
        }
    }
}
