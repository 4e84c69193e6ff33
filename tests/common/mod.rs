//! Shared helpers of the integration and end-to-end tests: running the real `ecrupdater` binary
//! with a clean environment, starting the third-party peers (moto's server, `kubectl proxy`),
//! and checking that no credential reached the output.
#![allow(dead_code)]

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

/// Whether the end-to-end peers are required (CI sets `ECRUPDATER_E2E=1`).
pub fn e2e_required() -> bool {
    std::env::var("ECRUPDATER_E2E").as_deref() == Ok("1")
}

/// Whether `tool` is on the PATH.
pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false)
}

/// `true` when the peers are there; `false` (with a note) when they are not and not required;
/// a test failure when they are required but missing.
pub fn peers_available(tools: &[&str]) -> bool {
    let missing: Vec<&&str> = tools.iter().filter(|t| !on_path(t)).collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        !e2e_required(),
        "ECRUPDATER_E2E=1 but these peers are missing from PATH: {missing:?}"
    );
    eprintln!(
        "skipping: {missing:?} not on PATH (run .ci/run, or set ECRUPDATER_E2E=1 to require them)"
    );
    false
}

/// A child process killed when dropped.
pub struct Peer {
    child: Child,
    /// The port it listens on.
    pub port: u16,
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

/// A fresh temporary folder for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ecrupdater-test-{name}-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}
