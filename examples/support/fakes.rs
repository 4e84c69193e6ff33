//! Shared by the benchmark examples (soak, scale): starting the testkit's `fake-kube` and
//! `fake-ecr` processes, driving them (the fake ECR through its standard input, the fake API
//! server through its `/_admin/` endpoints), and reading this process's resource usage.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

/// A child process killed when dropped.
pub struct Fake(Child);

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a fake and reads its `listening on URL` line.
pub fn start_fake(
    path: &str,
    args: &[&str],
) -> Result<(Fake, String, Option<ChildStdin>, BufReader<ChildStdout>), String> {
    let mut child = Command::new(path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {path}: {e} (build it: cargo build --release -p ecrupdater-testkit --bins)"))?;
    println!("started {path} (pid {})", child.id());
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let fake = Fake(child);
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| format!("{path}: {e}"))?;
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("{path} said {line:?}"))?
        .to_string();
    Ok((fake, url, stdin, reader))
}

/// The fake ECR's control channel (standard input and output).
pub struct EcrControl {
    pub stdin: ChildStdin,
    pub stdout: BufReader<ChildStdout>,
}

impl EcrControl {
    pub fn send(&mut self, command: &str) -> Result<String, String> {
        writeln!(self.stdin, "{command}").map_err(|e| format!("fake-ecr: {e}"))?;
        self.stdin.flush().map_err(|e| format!("fake-ecr: {e}"))?;
        let mut answer = String::new();
        self.stdout
            .read_line(&mut answer)
            .map_err(|e| format!("fake-ecr: {e}"))?;
        if answer.starts_with("ok") {
            Ok(answer.trim().to_string())
        } else {
            Err(format!("fake-ecr answered {answer:?} to {command:?}"))
        }
    }
}

/// The fake API server's `/_admin/` endpoints.
pub struct KubeAdmin {
    pub agent: ureq::Agent,
    pub base: String,
}

impl KubeAdmin {
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}/_admin/{path}", self.base);
        let result = match (method, body) {
            ("POST", Some(body)) => self
                .agent
                .post(&url)
                .content_type("application/json")
                .send(body.to_string()),
            ("POST", None) => self.agent.post(&url).send_empty(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            _ => self.agent.get(&url).call(),
        };
        let mut response = result.map_err(|e| format!("{method} {url}: {e}"))?;
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{method} {url}: {e}"))?;
        serde_json::from_str(&text).map_err(|e| format!("{method} {url}: {e}"))
    }

    pub fn fault(
        &self,
        method: Option<&str>,
        path_prefix: &str,
        times: u64,
        kind: Value,
    ) -> Result<(), String> {
        self.call(
            "POST",
            "faults",
            Some(
                json!({"method": method, "path_prefix": path_prefix, "times": times, "kind": kind}),
            ),
        )
        .map(|_| ())
    }
}

/// Resident memory now and at its peak (KiB), threads, and open descriptors of this process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub threads: u64,
    pub fds: u64,
}

pub fn usage() -> Usage {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    // Minus the descriptor read_dir itself holds open while listing.
    let fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(0)
        .saturating_sub(1);
    Usage {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        threads: field("Threads:"),
        fds,
    }
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
