//! The scratch image under podman, for tests/image.rs: building the static binaries and both
//! images once per test run ([`built`]), reading an image's config and its one layer
//! ([`inspect`], [`layer_files`]), running containers as the restricted Pod Security profile
//! runs them ([`Container`]), the Deployment's own environment ([`deployment_env`]), and moto
//! behind a front that gives its tokens a real expiry ([`EcrFront`]).
//!
//! podman runs with the flags that work in this sandbox and in CI (shared/reference/test-peers.md):
//! runc as the runtime (crun refuses the hybrid cgroup layout), cgroupfs, vfs storage, and
//! explicit rlimits under the sandbox's hard limit.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{TinyRequest, TinyResponse, TinyServer};

/// podman's global flags (the same as scripts/build-image.sh's default).
pub const PODMAN_FLAGS: &[&str] = &[
    "--runtime",
    "/usr/sbin/runc",
    "--cgroup-manager",
    "cgroupfs",
    "--storage-driver",
    "vfs",
];

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A podman command with [`PODMAN_FLAGS`].
pub fn podman() -> Command {
    let mut cmd = Command::new("podman");
    cmd.args(PODMAN_FLAGS);
    cmd
}

/// Runs podman with `args`; fails the test (with its stderr) unless it succeeds; returns stdout.
pub fn podman_ok(args: &[&str]) -> String {
    let out = podman().args(args).output().expect("run podman");
    assert!(
        out.status.success(),
        "podman {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A line on the test's own stderr that libtest does not capture: what a reader of the test
/// output must see even when the test passes (a part that could not run here, and why).
pub fn note(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "image: {line}");
}

/// One architecture's image as built for this test run.
#[derive(Debug, Clone)]
pub struct Built {
    /// Docker's architecture name (`amd64`, `arm64`).
    pub arch: &'static str,
    /// The reference scripts/build-image.sh printed last (`localhost/...:TAG`).
    pub image: String,
    /// The binary scripts/build-static.sh left for the image (target/dist/linux/ARCH/ecrupdater).
    pub binary: PathBuf,
}

/// Both images, amd64 then arm64.
#[derive(Debug, Clone)]
pub struct BuiltImages {
    pub amd64: Built,
    pub arm64: Built,
}

fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A command for one of the build scripts, without the variables `cargo test` sets for the test
/// process (CARGO_PKG_*, CARGO_MANIFEST_*, LD_LIBRARY_PATH...): the release builds' fingerprints
/// then match a build from a shell, so neither rebuilds after the other.
fn script(name: &str) -> Command {
    let root = repo();
    let mut cmd = Command::new("bash");
    cmd.arg(root.join("scripts").join(name))
        .current_dir(&root)
        .stdin(Stdio::null());
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let from_cargo =
            (key.starts_with("CARGO") && key != "CARGO_HOME" && key != "CARGO_TARGET_DIR")
                || key == "LD_LIBRARY_PATH";
        if from_cargo {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd
}

fn build_all() -> Result<BuiltImages, String> {
    let root = repo();
    let started = Instant::now();
    note(
        "building the static release binaries (scripts/build-static.sh amd64 arm64; cargo reuses them when fresh)",
    );
    let out = script("build-static.sh")
        .args(["amd64", "arm64"])
        .output()
        .map_err(|e| format!("cannot run scripts/build-static.sh: {e}"))?;
    if !out.status.success() {
        return Err(describe("scripts/build-static.sh amd64 arm64", &out));
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let mut built = Vec::new();
    for arch in ["amd64", "arm64"] {
        let out = script("build-image.sh")
            .arg(arch)
            .output()
            .map_err(|e| format!("cannot run scripts/build-image.sh: {e}"))?;
        if !out.status.success() {
            return Err(describe(&format!("scripts/build-image.sh {arch}"), &out));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let image = stdout.lines().last().unwrap_or_default().trim().to_string();
        if !image.starts_with("localhost/") || !image.ends_with(&format!("-{arch}")) {
            return Err(format!(
                "scripts/build-image.sh {arch}: the last line is not a localhost/...:TAG-{arch} reference: {image:?}"
            ));
        }
        let binary = if target_dir.is_absolute() {
            target_dir.clone()
        } else {
            root.join(&target_dir)
        }
        .join("dist/linux")
        .join(arch)
        .join("ecrupdater");
        built.push(Built {
            arch,
            image,
            binary,
        });
    }
    note(&format!(
        "images built in {:.1} s: {} and {}",
        started.elapsed().as_secs_f64(),
        built[0].image,
        built[1].image
    ));
    let arm64 = built.pop().expect("arm64");
    let amd64 = built.pop().expect("amd64");
    Ok(BuiltImages { amd64, arm64 })
}

/// The static binaries and both images, built once per test binary run (the first test to ask
/// builds; the others wait for it). A failed build fails every test that asks.
pub fn built() -> &'static BuiltImages {
    static BUILT: OnceLock<Result<BuiltImages, String>> = OnceLock::new();
    match BUILT.get_or_init(build_all) {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    }
}

/// `podman image inspect` of one image, as JSON.
pub fn inspect(image: &str) -> serde_json::Value {
    let text = podman_ok(&["image", "inspect", image]);
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("inspect prints JSON");
    v.get_mut(0)
        .map(serde_json::Value::take)
        .expect("one image")
}

/// One entry of an image layer: its tar listing fields.
#[derive(Debug, Clone)]
pub struct LayerEntry {
    /// `tar -tv`'s mode column (`-rwxr-xr-x`, `drwxr-xr-x`, ...).
    pub mode: String,
    /// Owner as `uid/gid` (`tar --numeric-owner`).
    pub owner: String,
    /// The path inside the layer.
    pub path: String,
}

/// The image saved as an OCI layout in `dir`: its layer blobs' paths, in order.
pub fn save_oci(image: &str, dir: &Path) -> Vec<PathBuf> {
    let _ = std::fs::remove_dir_all(dir);
    podman_ok(&[
        "save",
        "--format",
        "oci-dir",
        "-o",
        dir.to_str().expect("utf-8"),
        image,
    ]);
    let blob = |digest: &str| {
        let (algo, hex) = digest.split_once(':').expect("algo:hex digest");
        dir.join("blobs").join(algo).join(hex)
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index.json"))
            .expect("index JSON");
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .expect("a manifest");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(manifest_digest)).expect("manifest blob"))
            .expect("manifest JSON");
    manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| blob(l["digest"].as_str().expect("layer digest")))
        .collect()
}

/// Every entry of a layer tar (compressed or not: tar detects it).
pub fn layer_files(layer: &Path) -> Vec<LayerEntry> {
    let out = Command::new("tar")
        .args(["--numeric-owner", "-tvf"])
        .arg(layer)
        .output()
        .expect("run tar");
    assert!(out.status.success(), "{}", describe("tar -tvf", &out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert!(words.len() >= 6, "unexpected tar line {line:?}");
            LayerEntry {
                mode: words[0].to_string(),
                owner: words[1].to_string(),
                path: words[5..].join(" "),
            }
        })
        .collect()
}

/// Extracts `member` of a layer tar to `dest`.
pub fn extract(layer: &Path, member: &str, dest: &Path) {
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(layer)
        .arg(member)
        .output()
        .expect("run tar");
    assert!(out.status.success(), "{}", describe("tar -xOf", &out));
    std::fs::write(dest, out.stdout).expect("write the extracted file");
}

/// `file -b` on a path.
pub fn file_verdict(path: &Path) -> String {
    let out = Command::new("file")
        .arg("-b")
        .arg(path)
        .output()
        .expect("run file");
    assert!(out.status.success(), "{}", describe("file", &out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Whether this machine executes a binary directly (a binfmt_misc handler for foreign ones):
/// `Ok(())`, or why not.
pub fn can_execute(binary: &Path) -> Result<(), String> {
    match Command::new(binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("{} --version exited {status}", binary.display())),
        Err(e) => Err(format!("{} cannot be executed here: {e}", binary.display())),
    }
}

// ---- The Deployment's own environment.

/// The `name`/`value` pairs of the first container's `env:` in a Deployment manifest (the plain
/// `- name: X` / `value: Y` form the shipped manifests use; `valueFrom` entries are not there).
pub fn deployment_env(manifest: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut env_indent: Option<usize> = None;
    let mut name: Option<String> = None;
    for line in manifest.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        match env_indent {
            None => {
                if trimmed == "env:" && out.is_empty() {
                    env_indent = Some(indent);
                }
            }
            Some(at) if indent <= at && !trimmed.starts_with('-') => break,
            Some(at) if indent < at => break,
            Some(_) => {
                let item = trimmed.trim_start_matches("- ");
                if let Some(n) = item.strip_prefix("name:") {
                    name = Some(n.trim().to_string());
                } else if let Some(v) = item.strip_prefix("value:") {
                    let v = v.trim().trim_matches('"').to_string();
                    out.push((name.take().expect("value after name"), v));
                }
            }
        }
    }
    out
}

// ---- Containers.

/// How a container runs: the restricted Pod Security profile's settings, always.
pub struct RunSpec<'a> {
    /// The image reference.
    pub image: &'a str,
    /// The environment, exactly (nothing else is passed; the engine adds PATH, HOSTNAME and
    /// `container`, as the kubelet adds HOSTNAME and the service variables).
    pub env: Vec<(String, String)>,
    /// Host folder mounted read-only at /var/run/secrets/kubernetes.io/serviceaccount.
    pub service_account: &'a Path,
    /// An interpreter to run the entrypoint with (qemu-user for a foreign architecture when
    /// binfmt_misc does not supply it): mounted read-only at /qemu and made the entrypoint.
    pub interpreter: Option<&'a Path>,
    /// Arguments after the entrypoint.
    pub args: Vec<String>,
}

/// A container started in the background with `podman run -d`; removed when dropped.
pub struct Container {
    /// Its name (unique per test run).
    pub name: String,
    env_file: PathBuf,
}

impl Container {
    /// The `podman run` arguments for `spec` (up to and including the image and its args).
    fn run_args(spec: &RunSpec<'_>, name: &str, env_file: &Path) -> Vec<String> {
        let mut args: Vec<String> = [
            "run",
            "--name",
            name,
            "--network",
            "host",
            "--read-only",
            // No tmpfs on /tmp, /run and /var/tmp either (podman's default with --read-only):
            // readOnlyRootFilesystem in Kubernetes gives none.
            "--read-only-tmpfs=false",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--user",
            "65534:65534",
            "--memory",
            "64m",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "--pull",
            "never",
            "--log-driver",
            "k8s-file",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push("--env-file".into());
        args.push(env_file.to_str().expect("utf-8").into());
        args.push("-v".into());
        args.push(format!(
            "{}:/var/run/secrets/kubernetes.io/serviceaccount:ro",
            spec.service_account.to_str().expect("utf-8")
        ));
        let mut tail = Vec::new();
        if let Some(interpreter) = spec.interpreter {
            args.push("-v".into());
            args.push(format!("{}:/qemu:ro", interpreter.to_str().expect("utf-8")));
            args.push("--entrypoint".into());
            args.push("/qemu".into());
            tail.push("/ecrupdater".to_string());
        }
        args.push(spec.image.to_string());
        args.extend(tail);
        args.extend(spec.args.iter().cloned());
        args
    }

    fn prepare(spec: &RunSpec<'_>) -> (String, PathBuf) {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("ecrupdater-test-{}-{n}", std::process::id());
        let env_file = super::temp_dir("container-env").join("env");
        let mut text = String::new();
        for (k, v) in &spec.env {
            assert!(!v.contains('\n'), "{k}: one line only in an env file");
            text.push_str(&format!("{k}={v}\n"));
        }
        std::fs::write(&env_file, text).expect("write the env file");
        (name, env_file)
    }

    /// Starts a container in the background (`podman run -d`).
    pub fn start(spec: &RunSpec<'_>) -> Container {
        let (name, env_file) = Container::prepare(spec);
        let mut args = Container::run_args(spec, &name, &env_file);
        args.insert(1, "-d".into());
        let container = Container { name, env_file };
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        podman_ok(&refs);
        container
    }

    /// Runs a container in the foreground to its end (killed and failed after `limit`): its
    /// exit status and its log.
    pub fn run_to_end(spec: &RunSpec<'_>, limit: Duration) -> (i32, String) {
        let (name, env_file) = Container::prepare(spec);
        let args = Container::run_args(spec, &name, &env_file);
        let container = Container { name, env_file };
        let mut child = podman()
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("podman run");
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for podman run") {
                break status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let log = container.logs();
                let _ = child.kill();
                let _ = child.wait();
                panic!("the container did not end within {limit:?}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let log = container.logs();
        let state = container.state();
        assert_eq!(
            state["ExitCode"].as_i64(),
            Some(i64::from(status)),
            "podman run's status is the container's"
        );
        (status, log)
    }

    /// `podman inspect`'s `State` of the container.
    pub fn state(&self) -> serde_json::Value {
        let text = podman_ok(&["container", "inspect", &self.name]);
        let v: serde_json::Value = serde_json::from_str(&text).expect("inspect JSON");
        v[0]["State"].clone()
    }

    /// The container's main process id on the host (0 when it is not running).
    pub fn pid(&self) -> u32 {
        self.state()["Pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(0)
    }

    /// Everything it wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        let out = podman()
            .args(["logs", &self.name])
            .output()
            .expect("podman logs");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Waits until `needle` is in the log; fails (with the log) after `limit` or if the
    /// container ends first.
    pub fn wait_for_log(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let log = self.logs();
            if log.contains(needle) {
                return log;
            }
            let state = self.state();
            assert!(
                state["Running"].as_bool() == Some(true),
                "the container ended (exit {}) before {needle:?}:\n{log}",
                state["ExitCode"]
            );
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the log after {limit:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `podman stop --time SECS`: SIGTERM, then SIGKILL after `secs` if it is still running.
    /// Returns the exit code (137 means it had to be killed).
    pub fn stop(&self, secs: u32) -> i64 {
        podman_ok(&["stop", "--time", &secs.to_string(), &self.name]);
        self.state()["ExitCode"].as_i64().expect("ExitCode")
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman()
            .args(["rm", "--force", "--time", "0", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_file(&self.env_file);
    }
}

/// The environment of a running process (`/proc/PID/environ`), as `NAME` to value.
pub fn process_env(pid: u32) -> Vec<(String, String)> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).expect("read /proc/PID/environ");
    raw.split(|b| *b == 0)
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            let (k, v) = kv.split_once('=').unwrap_or((&kv, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

// ---- moto with a real expiry.

/// A front for moto's server: every request is forwarded to moto unchanged (headers, body,
/// signature: moto still checks SigV4), and in GetAuthorizationToken's answer each `expiresAt`
/// (moto's is fixed in 2015, always past) becomes `expires_at`, as real ECR answers twelve hours
/// ahead. Everything else of the answer is moto's.
pub struct EcrFront {
    server: TinyServer,
    /// The expiry it writes, in seconds since the epoch.
    pub expires_at: f64,
}

impl EcrFront {
    /// Starts the front for moto on 127.0.0.1:`moto_port`.
    pub fn start(moto_port: u16) -> EcrFront {
        let expires_at = super::in_12_hours();
        let server = TinyServer::start(move |request| forward(moto_port, request, expires_at));
        EcrFront { server, expires_at }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Every request it forwarded.
    pub fn requests(&self) -> Vec<TinyRequest> {
        self.server.requests()
    }
}

fn forward(moto_port: u16, request: &TinyRequest, expires_at: f64) -> TinyResponse {
    let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.path);
    for (name, value) in &request.headers {
        if name != "connection" && name != "content-length" {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        request.body.len()
    ));
    let Ok(mut moto) = TcpStream::connect(("127.0.0.1", moto_port)) else {
        return (502, "text/plain", "moto is not reachable".into());
    };
    let _ = moto.set_read_timeout(Some(Duration::from_secs(30)));
    if moto.write_all(head.as_bytes()).is_err() || moto.write_all(request.body.as_bytes()).is_err()
    {
        return (502, "text/plain", "cannot send to moto".into());
    }
    let mut answer = Vec::new();
    let _ = moto.take(4 * 1024 * 1024).read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let Some((head, body)) = answer.split_once("\r\n\r\n") else {
        return (502, "text/plain", "moto's answer has no head".into());
    };
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    if !body.trim_start().starts_with('{') {
        return (status, "text/xml", body.to_string());
    }
    let Ok(mut json) = serde_json::from_str::<serde_json::Value>(body) else {
        return (status, "application/x-amz-json-1.1", body.to_string());
    };
    if let Some(items) = json
        .get_mut("authorizationData")
        .and_then(|a| a.as_array_mut())
    {
        for item in items {
            item["expiresAt"] = serde_json::json!(expires_at);
        }
    }
    (status, "application/x-amz-json-1.1", json.to_string())
}
