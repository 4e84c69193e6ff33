//! Shared helpers of the integration and end-to-end tests: running the real `ecrupdater` binary
//! with a clean environment, starting the third-party peers (moto's server, `kubectl proxy`),
//! and checking that no credential reached the output.
#![allow(dead_code)]

pub mod aws;
pub mod fake;
pub mod image;
pub mod logs;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_ecrupdater")
}

/// What a finished run printed and returned.
#[derive(Debug)]
pub struct Finished {
    /// Exit status (`-1` when killed by a signal).
    pub status: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Finished {
    /// Both streams together.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A command for the binary with an empty environment but for `vars` (and a PATH), so nothing
/// from the machine (AWS_*, KUBERNETES_*) leaks in. LOG_CONFIG points nowhere unless set.
pub fn command(vars: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(binary());
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("LOG_CONFIG", "/nonexistent/logging.json")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("ECR_HEALTH_ADDR", "127.0.0.1:0")
        // Registry verification (default warn) would call the fake ECR's registry host, which is
        // not on 127.0.0.1; the tests of verification set ECR_VERIFY themselves.
        .env("ECR_VERIFY", "off")
        .current_dir(std::env::temp_dir())
        .args(args);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

/// Runs the binary to completion, killing it after `limit`.
pub fn run(vars: &[(&str, &str)], args: &[&str], limit: Duration) -> Finished {
    let mut child = command(vars, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ecrupdater");
    let mut stdout = child.stdout.take().expect("stdout pipe");
    let mut stderr = child.stderr.take().expect("stderr pipe");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = wait_with_limit(&mut child, limit);
    Finished {
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}

/// Waits for a child; kills it after `limit` and fails the test.
pub fn wait_with_limit(child: &mut Child, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ecrupdater did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGTERM to a child (through the `kill` command: no `unsafe` in tests either).
pub fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM failed");
}

/// Fails the test if any of `secrets` appears in `text`.
pub fn assert_no_credentials(text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(
            !text.contains(secret),
            "a credential appears in the output: {}...\n--- output ---\n{text}",
            &secret[..secret.len().min(4)]
        );
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Waits until something listens on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, limit: Duration) {
    let deadline = Instant::now() + limit;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on 127.0.0.1:{port} after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---- The end-to-end peers. A test that needs one is marked
// ---- `#[ignore = "needs PEER (install: ...)"]`, so plain `cargo test` reports it as ignored
// ---- with the reason; `--include-ignored` (scripts/test.sh) runs it, and then a missing peer is
// ---- a failure naming the peer and how to install it, never a silent pass.

/// How to install a peer (a program on the PATH, or `python3:MODULE` for a Python module).
pub fn install_hint(peer: &str) -> &'static str {
    match peer {
        "moto_server" => {
            "scripts/test.sh installs it into .venv, or pip install 'moto[server]>=5.1,<6'"
        }
        "python3" => "apt-get install python3 python3-venv",
        "python3:boto3" => "scripts/test.sh installs it into .venv, or pip install boto3",
        "python3:yaml" => "scripts/test.sh installs it into .venv, or pip install pyyaml",
        "python3:prometheus_client" => {
            "scripts/test.sh installs it into .venv, or pip install prometheus-client"
        }
        "kubectl" => "https://kubernetes.io/docs/tasks/tools/ (no Debian package)",
        "promtool" => "apt-get install prometheus",
        "docker-registry" => "apt-get install docker-registry",
        "skopeo" => "apt-get install skopeo",
        "htpasswd" => "apt-get install apache2-utils",
        "curl" => "apt-get install curl",
        "podman" => "apt-get install podman",
        "runc" => "apt-get install runc",
        _ => "scripts/test.sh installs every peer",
    }
}

/// Whether `tool` is on the PATH.
pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false)
}

/// Whether `python3` on the PATH can import `module`.
pub fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The peers of `peers` that are missing: programs on the PATH, and `python3:MODULE` for a
/// module python3 must import.
pub fn missing_peers(peers: &[&str]) -> Vec<String> {
    peers
        .iter()
        .filter(|p| match p.strip_prefix("python3:") {
            Some(module) => !on_path("python3") || !python_has(module),
            None => !on_path(p),
        })
        .map(|p| p.to_string())
        .collect()
}

/// Fails the test, naming every missing peer and how to install it, unless all of `peers` are
/// there. Call it first in every test marked `#[ignore = "needs ..."]`.
pub fn require_peers(peers: &[&str]) {
    let missing = missing_peers(peers);
    if missing.is_empty() {
        return;
    }
    let list: Vec<String> = missing
        .iter()
        .map(|p| format!("  {p}: install: {}", install_hint(p)))
        .collect();
    panic!(
        "this test needs peers that are missing (scripts/test.sh installs them all):\n{}",
        list.join("\n")
    );
}

/// Kept for tests written before the peers were marked `#[ignore]`: requires them (a failure
/// naming each missing one) and returns `true`. Never a skip.
pub fn peers_available(tools: &[&str]) -> bool {
    require_peers(tools);
    true
}

/// Kept for tests written before the peers were marked `#[ignore]`: peers are always required
/// by a test that runs, so this is always `true`.
pub fn e2e_required() -> bool {
    true
}

/// A child process killed when dropped.
pub struct Peer {
    child: Child,
    /// The port it listens on.
    pub port: u16,
}

impl Peer {
    /// A peer process listening on `port`.
    pub fn new(child: Child, port: u16) -> Peer {
        Peer { child, port }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Keys made in moto's IAM.
#[derive(Debug, Clone)]
pub struct MotoKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub role_arn: String,
    pub session_access_key_id: String,
    pub session_secret_access_key: String,
    pub session_token: String,
}

/// moto's server on a free port, with an IAM user, role and keys made through its free requests
/// and SigV4 checking switched on (tests/e2e/moto_setup.py).
pub fn start_moto() -> (Peer, MotoKeys) {
    let port = free_port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("INITIAL_NO_AUTH_ACTION_COUNT", "20")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let peer = Peer { child, port };
    wait_for_port(port, Duration::from_secs(30));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/moto_setup.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}"))
        .output()
        .expect("run moto_setup.py");
    assert!(
        out.status.success(),
        "moto_setup.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("moto_setup.py prints JSON");
    let s = |p: &str| {
        v.pointer(p)
            .and_then(|x| x.as_str())
            .expect("field")
            .to_string()
    };
    let keys = MotoKeys {
        access_key_id: s("/access_key_id"),
        secret_access_key: s("/secret_access_key"),
        role_arn: s("/role_arn"),
        session_access_key_id: s("/session/access_key_id"),
        session_secret_access_key: s("/session/secret_access_key"),
        session_token: s("/session/session_token"),
    };
    (peer, keys)
}

/// `kubectl proxy` on a free port in front of `upstream` (an http:// URL).
pub fn start_kubectl_proxy(upstream: &str, dir: &Path) -> Peer {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {upstream}\n\
             users:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
             current-context: fake\n"
        ),
    )
    .expect("write kubeconfig");
    let port = free_port();
    let child = Command::new("kubectl")
        .args(["proxy", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["--port", &port.to_string(), "--address", "127.0.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start kubectl proxy");
    let peer = Peer { child, port };
    wait_for_port(port, Duration::from_secs(30));
    peer
}

/// A fresh temporary folder for one test (unique within the process and across processes).
pub fn temp_dir(name: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir =
        std::env::temp_dir().join(format!("ecrupdater-test-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

// ---- Small servers for the credential tests: metadata/container endpoints, a fake STS, a proxy.

/// A request a [`TinyServer`] received.
#[derive(Debug, Clone)]
pub struct TinyRequest {
    /// `GET`, `PUT`, `POST`...
    pub method: String,
    /// The request target as sent (origin form).
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body (Content-Length bytes).
    pub body: String,
}

impl TinyRequest {
    /// The first header of that (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A form body's decoded value (`application/x-www-form-urlencoded`).
    pub fn form(&self, name: &str) -> Option<String> {
        self.body.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| percent_decode(v))
        })
    }
}

/// `%XX` and `+` decoding.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a [`TinyServer`] handler answers: status, content type, body.
pub type TinyResponse = (u16, &'static str, String);

/// A tiny HTTP/1.1 server on 127.0.0.1 (one request per connection, then close), recording
/// every request; the handler decides each answer (and may sleep to play a silent peer).
pub struct TinyServer {
    /// The port it listens on.
    pub port: u16,
    requests: std::sync::Arc<std::sync::Mutex<Vec<TinyRequest>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl TinyServer {
    /// Starts serving with `handler`.
    pub fn start(
        handler: impl Fn(&TinyRequest) -> TinyResponse + Send + Sync + 'static,
    ) -> TinyServer {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind tiny server");
        let port = listener.local_addr().expect("addr").port();
        let requests: Arc<Mutex<Vec<TinyRequest>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let (recorded, stopping) = (Arc::clone(&requests), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let (handler, recorded) = (Arc::clone(&handler), Arc::clone(&recorded));
                std::thread::spawn(move || {
                    use std::io::Write;
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let Some(request) = read_request(&mut stream) else {
                        return;
                    };
                    recorded.lock().expect("requests").push(request.clone());
                    let (status, content_type, body) = handler(&request);
                    let head = format!(
                        "HTTP/1.1 {status} Answer\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(body.as_bytes());
                    let _ = stream.flush();
                });
            }
        });
        TinyServer {
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
    pub fn requests(&self) -> Vec<TinyRequest> {
        self.requests.lock().expect("requests").clone()
    }

    /// Forgets the requests so far.
    pub fn clear(&self) {
        self.requests.lock().expect("requests").clear();
    }
}

impl Drop for TinyServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads the head (byte by byte, so nothing after it is consumed) up to the blank line.
fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).ok()
}

/// One request: head and Content-Length body.
fn read_request(stream: &mut TcpStream) -> Option<TinyRequest> {
    let head = read_head(stream)?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    Some(TinyRequest {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// A forward proxy on 127.0.0.1 speaking both CONNECT (tunnels) and absolute-URI requests, as
/// `HTTPS_PROXY`/`HTTP_PROXY` clients use it; it records each `host:port` it was asked for.
pub struct ForwardProxy {
    /// The port it listens on.
    pub port: u16,
    targets: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ForwardProxy {
    /// Starts the proxy.
    pub fn start() -> ForwardProxy {
        use std::io::Write;
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let targets: Arc<Mutex<Vec<String>>> = Arc::default();
        let recorded = Arc::clone(&targets);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut client) = stream else { continue };
                let recorded = Arc::clone(&recorded);
                std::thread::spawn(move || {
                    let Some(head) = read_head(&mut client) else {
                        return;
                    };
                    let first = head.lines().next().unwrap_or_default().to_string();
                    let mut parts = first.split(' ');
                    let method = parts.next().unwrap_or_default().to_string();
                    let target = parts.next().unwrap_or_default().to_string();
                    let (authority, forwarded_head) = if method == "CONNECT" {
                        (target.clone(), None)
                    } else {
                        // Absolute form: http://host:port/path -> origin form upstream.
                        let rest = target.strip_prefix("http://").unwrap_or(&target);
                        let (authority, path) = match rest.find('/') {
                            Some(i) => (&rest[..i], &rest[i..]),
                            None => (rest, "/"),
                        };
                        let head = head.replacen(&target, path, 1);
                        (authority.to_string(), Some(head))
                    };
                    recorded.lock().expect("targets").push(authority.clone());
                    let Ok(mut upstream) = TcpStream::connect(&authority) else {
                        let _ = client
                            .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
                        return;
                    };
                    match forwarded_head {
                        None => {
                            let _ =
                                client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                        }
                        Some(head) => {
                            let _ = upstream.write_all(head.as_bytes());
                        }
                    }
                    let (Ok(mut client_read), Ok(mut upstream_write)) =
                        (client.try_clone(), upstream.try_clone())
                    else {
                        return;
                    };
                    let up = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut client_read, &mut upstream_write);
                        let _ = upstream_write.shutdown(std::net::Shutdown::Write);
                    });
                    let _ = std::io::copy(&mut upstream, &mut client);
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    let _ = up.join();
                });
            }
        });
        ForwardProxy { port, targets }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every `host:port` asked for so far.
    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().expect("targets").clone()
    }
}

/// Switches moto's SigV4 checking off (`inf`) or on (`0`) at run time: `POST /moto-api/reset-auth`
/// with a text/plain body (a form content type would empty it).
pub fn moto_reset_auth(port: u16, body: &str) {
    use std::io::Write;
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to moto");
    write!(
        s,
        "POST /moto-api/reset-auth HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send reset-auth");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"),
        "reset-auth failed: {answer}"
    );
}

// ---- The daemon in the background, its health endpoint, and pull-secret checks (used by
// ---- tests/faults.rs and tests/health_metrics.rs).

/// The real binary running as a daemon (no `--once` unless asked), its log (stderr) in a file;
/// killed when dropped.
pub struct DaemonProcess {
    child: Child,
    log: PathBuf,
}

impl DaemonProcess {
    /// Starts the binary with [`command`]'s clean environment plus `vars`.
    pub fn start(vars: &[(&str, &str)], args: &[&str]) -> DaemonProcess {
        let log = temp_dir("daemon").join("daemon.log");
        let child = command(vars, args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start ecrupdater");
        DaemonProcess { child, log }
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `needle` appears at least `times` times in the log; returns the log. Fails
    /// the test (showing the log) after `limit`, or if the daemon exits meanwhile.
    pub fn wait_for_count(&mut self, needle: &str, times: usize, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let log = self.log();
            if log.matches(needle).count() >= times {
                return log;
            }
            if let Some(status) = self.child.try_wait().expect("wait") {
                panic!("the daemon exited ({status}) before {needle:?} x{times}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} x{times} in the log after {limit:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `needle` appears in the log; returns the log.
    pub fn wait_for_log(&mut self, needle: &str, limit: Duration) -> String {
        self.wait_for_count(needle, 1, limit)
    }

    /// The WARNING and ERROR lines of the log that contain `needle`.
    pub fn problem_lines(&self, needle: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| (l.starts_with("WARNING") || l.starts_with("ERROR")) && l.contains(needle))
            .map(str::to_string)
            .collect()
    }

    /// The process's peak resident set so far, in KiB (`VmHWM` in `/proc/PID/status`: a
    /// high-water mark kept by the kernel, so it holds every spike up to the moment of reading).
    /// Read it while the daemon still runs (after the answer under test has been handled).
    pub fn peak_rss_kib(&mut self) -> u64 {
        self.assert_running();
        peak_rss_kib(self.child.id())
    }

    /// The system call the daemon's main thread is blocked in, by number (Linux's
    /// `/proc/PID/syscall`): `Ok(None)` while it runs, `Err` when the file cannot be read.
    pub fn blocked_in(&self) -> std::io::Result<Option<u64>> {
        let text = std::fs::read_to_string(format!("/proc/{}/syscall", self.child.id()))?;
        Ok(text.split_whitespace().next().and_then(|n| n.parse().ok()))
    }

    /// Fails the test unless the process is still running.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("wait") {
            panic!("the daemon exited ({status}):\n{}", self.log());
        }
    }

    /// The port of the health endpoint, from the start-up line
    /// `health and metrics on http://127.0.0.1:PORT`.
    pub fn health_port(&mut self) -> u16 {
        const MARK: &str = "health and metrics on http://127.0.0.1:";
        let log = self.wait_for_log(MARK, Duration::from_secs(10));
        let rest = &log[log.find(MARK).expect("mark") + MARK.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().expect("a port after the health mark")
    }

    /// SIGTERM, then the exit status (killed and failed after 10 s) and the whole log.
    pub fn stop(mut self) -> (i32, String) {
        sigterm(&self.child);
        let status = wait_with_limit(&mut self.child, Duration::from_secs(10));
        (status, self.log())
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on 127.0.0.1:`port` over a plain HTTP/1.1 connection: (status, body).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::Write;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to 127.0.0.1");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read the answer");
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {answer:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, body.to_string())
}

/// The samples of a Prometheus text answer, `name{labels}` (as written) to value.
pub fn metric_samples(text: &str) -> std::collections::BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (key, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not a sample line: {l:?}"));
            let value = value
                .parse()
                .unwrap_or_else(|_| panic!("not a number in {l:?}"));
            (key.to_string(), value)
        })
        .collect()
}

/// Checks a pull secret as the kubelet reads it: type `kubernetes.io/dockerconfigjson`, a
/// `.dockerconfigjson` that is valid docker config JSON whose only login is for `host`, with
/// `username` and `password` and an `auth` equal to base64(`username:password`); and the
/// expiry annotation naming `expires_epoch`.
pub fn assert_pull_secret(
    secret: &serde_json::Value,
    host: &str,
    username: &str,
    password: &str,
    expires_epoch: f64,
) {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    let where_ = format!(
        "{}/{}",
        secret["metadata"]["namespace"].as_str().unwrap_or("?"),
        secret["metadata"]["name"].as_str().unwrap_or("?")
    );
    assert_eq!(
        secret["type"], "kubernetes.io/dockerconfigjson",
        "{where_}: type"
    );
    let data = secret["data"][".dockerconfigjson"]
        .as_str()
        .unwrap_or_else(|| panic!("{where_}: no .dockerconfigjson"));
    let raw = STANDARD
        .decode(data)
        .unwrap_or_else(|e| panic!("{where_}: payload is not base64: {e}"));
    let doc: serde_json::Value = serde_json::from_slice(&raw)
        .unwrap_or_else(|e| panic!("{where_}: payload is not JSON: {e}"));
    let auths = doc["auths"]
        .as_object()
        .unwrap_or_else(|| panic!("{where_}: no auths object"));
    let hosts: Vec<&String> = auths.keys().collect();
    assert_eq!(hosts, [host], "{where_}: registry hosts");
    let entry = &auths[host];
    assert_eq!(entry["username"], username, "{where_}: username");
    assert!(
        entry["password"] == password,
        "{where_}: the password is not the current one"
    );
    let auth = STANDARD
        .decode(entry["auth"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{where_}: auth is not base64: {e}"));
    assert!(
        auth == format!("{username}:{password}").as_bytes(),
        "{where_}: auth does not match username and password"
    );
    let annotation = secret["metadata"]["annotations"]["k8s-ecrupdater/token-expires-at"]
        .as_str()
        .unwrap_or_else(|| panic!("{where_}: no expiry annotation"));
    let expiry =
        time::OffsetDateTime::parse(annotation, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("{where_}: expiry {annotation:?} is not RFC 3339: {e}"));
    assert!(
        (expiry.unix_timestamp() as f64 - expires_epoch).abs() < 1.0,
        "{where_}: expiry {annotation} is not the token's ({expires_epoch})"
    );
}

/// Seconds since the Unix epoch, twelve hours from now (whole seconds): a fresh ECR token's expiry.
pub fn in_12_hours() -> f64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    (now + 12 * 3600) as f64
}

/// The fake ECR on 127.0.0.1, handing out `password` until twelve hours from now; returns it with
/// that expiry.
pub fn fake_ecr_with(password: &str) -> (ecrupdater_testkit::FakeEcr, f64) {
    let ecr = ecrupdater_testkit::FakeEcr::start();
    let expires = in_12_hours();
    ecr.set_token("AWS", password, expires);
    (ecr, expires)
}

/// The peak resident set of process `pid` so far, in KiB (`VmHWM` in `/proc/PID/status`).
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc status")
}

/// Hostile Kubernetes API servers (raw sockets) for tests/hostile_kube.rs.
pub mod kube;

/// Every folder under example_deployment/ holding a kustomization.yaml, with whether it is a
/// kustomize Component (which cannot render alone).
pub fn kustomization_dirs() -> Vec<(PathBuf, bool)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, bool)>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("read example_deployment")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path.file_name().is_some_and(|n| n == "kustomization.yaml") {
                let text = std::fs::read_to_string(&path).expect("read kustomization");
                let component = text.lines().any(|l| l.trim() == "kind: Component");
                out.push((dir.to_path_buf(), component));
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("example_deployment"),
        &mut out,
    );
    out
}
