//! Scale benchmark (scripts/bench-scale.sh runs it): for each namespace count, the daemon built
//! from the library in this process runs a first cycle (every secret created) and a steady-state
//! cycle (a new token: every secret patched, using what the first cycle learnt) against a
//! `fake-kube` and a `fake-ecr` process; then the real binary runs as a daemon and namespaces are
//! created one at a time to measure how soon each gets its secret. Prints cycle times, requests
//! per cycle by verb, this process's peak RSS (the daemon's side only: the fakes are other
//! processes) and the new-namespace latency. Figures only; nothing is asserted.
//!
//! `cargo run --release --example scale -- [--daemon PATH] [--fake-kube PATH] [--fake-ecr PATH]
//! [N...]` (default N: 100 1000 5000; the fakes default to target/release/{fake-kube,fake-ecr},
//! the daemon to the static build target/x86_64-unknown-linux-musl/release/ecrupdater).

#[path = "support/fakes.rs"]
mod fakes;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ecrupdater::config::{Config, Env, Flags};
use ecrupdater::daemon::Daemon;
use ecrupdater::health::Health;
use fakes::{EcrControl, KubeAdmin, mib, start_fake, usage};
use serde_json::{Value, json};

const SECRET: &str = "ecr-pull";
const LATENCY_PROBES: usize = 5;

struct Paths {
    daemon: String,
    fake_kube: String,
    fake_ecr: String,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("scale: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let mut paths = Paths {
        daemon: "target/x86_64-unknown-linux-musl/release/ecrupdater".into(),
        fake_kube: "target/release/fake-kube".into(),
        fake_ecr: "target/release/fake-ecr".into(),
    };
    let mut counts = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--daemon" => paths.daemon = value()?,
            "--fake-kube" => paths.fake_kube = value()?,
            "--fake-ecr" => paths.fake_ecr = value()?,
            n => counts.push(
                n.parse::<usize>()
                    .map_err(|_| format!("not a count: {n:?}"))?,
            ),
        }
    }
    if counts.is_empty() {
        counts = vec![100, 1000, 5000];
    }
    for n in counts {
        measure(&paths, n)?;
    }
    Ok(())
}

fn verbs(stats: &Value) -> (String, u64) {
    let by_verb = stats["requests_by_verb"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let text: Vec<String> = by_verb
        .iter()
        .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    (text.join(" "), stats["total"].as_u64().unwrap_or(0))
}

fn measure(paths: &Paths, n: usize) -> Result<(), String> {
    let n_text = n.to_string();
    let (_kube, kube_url, _, _) = start_fake(
        &paths.fake_kube,
        &["--namespaces", &n_text, "--no-default-sa"],
    )?;
    let (_ecr, ecr_url, ecr_in, ecr_out) = start_fake(&paths.fake_ecr, &[])?;
    let mut ecr = EcrControl {
        stdin: ecr_in.ok_or("fake-ecr has no stdin")?,
        stdout: ecr_out,
    };
    let admin = KubeAdmin {
        agent: ureq::Agent::new_with_defaults(),
        base: kube_url.clone(),
    };
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs()
        + 12 * 3600;
    ecr.send(&format!(
        "token AWS first-password-0123456789abcdef {expires}"
    ))?;

    let env_pairs = [
        ("K8S_PULL_SECRET_NAME", SECRET),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL", ecr_url.as_str()),
        ("ECR_VERIFY", "off"),
        ("AWS_ACCESS_KEY_ID", "AKIASCALEBENCHMARK"),
        ("AWS_SECRET_ACCESS_KEY", "scale-benchmark-secret-key"),
        ("KUBERNETES_API_ENDPOINT", kube_url.as_str()),
        ("ECR_CREATE_MISSING", "true"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let config = Config::from_env(&Env::from_pairs(env_pairs), Flags::default())
        .map_err(|e| e.to_string())?;
    let mut daemon = Daemon::from_config(config, Health::new())?;

    admin.call("POST", "stats/reset", None)?;
    let started = Instant::now();
    let first = daemon
        .cycle(true)
        .map_err(|e| format!("first cycle: {e:?}"))?;
    let first_time = started.elapsed();
    let (first_verbs, first_total) = verbs(&admin.call("GET", "stats", None)?);

    ecr.send(&format!(
        "token AWS steady-password-0123456789abcdef {}",
        expires + 60
    ))?;
    admin.call("POST", "stats/reset", None)?;
    let started = Instant::now();
    let steady = daemon
        .cycle(true)
        .map_err(|e| format!("steady cycle: {e:?}"))?;
    let steady_time = started.elapsed();
    let (steady_verbs, steady_total) = verbs(&admin.call("GET", "stats", None)?);
    let in_process_peak = usage().hwm_kib;
    drop(daemon);

    let (latencies, daemon_peak) = new_namespace_latency(paths, &kube_url, &ecr_url, &admin)?;
    let median = latencies[latencies.len() / 2];
    let max = latencies.last().copied().unwrap_or_default();
    println!(
        "namespaces={n} first: {:.2}s {first_total} requests ({first_verbs}), {} created | steady: {:.2}s {steady_total} requests ({steady_verbs}), {} updated, budget N+ceil(N/500)={} | peak_rss={:.2}MiB (the binary as a daemon: a cycle over all N, then watching; this process: {:.2}MiB) | new-namespace latency: median {:.3}s max {:.3}s over {} probes",
        first_time.as_secs_f64(),
        first.created(),
        steady_time.as_secs_f64(),
        steady.updated(),
        n + n.div_ceil(500),
        mib(daemon_peak),
        mib(in_process_peak),
        median.as_secs_f64(),
        max.as_secs_f64(),
        latencies.len(),
    );
    Ok(())
}

/// Runs the real binary as a daemon (a cycle over every namespace, then watching), creates
/// namespaces one at a time and measures, for each, the time until its secret can be read.
/// Returns the sorted latencies and the daemon's peak RSS (KiB).
fn new_namespace_latency(
    paths: &Paths,
    kube_url: &str,
    ecr_url: &str,
    admin: &KubeAdmin,
) -> Result<(Vec<Duration>, u64), String> {
    let mut child = Command::new(&paths.daemon)
        .env_clear()
        .envs([
            ("K8S_PULL_SECRET_NAME", SECRET),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", ecr_url),
            ("ECR_VERIFY", "off"),
            ("AWS_ACCESS_KEY_ID", "AKIASCALEBENCHMARK"),
            ("AWS_SECRET_ACCESS_KEY", "scale-benchmark-secret-key"),
            ("KUBERNETES_API_ENDPOINT", kube_url),
            ("ECR_CREATE_MISSING", "true"),
            ("ECR_HEALTH_ADDR", "127.0.0.1:0"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("LOG_CONFIG", "/nonexistent"),
            ("LOG_LEVEL", "INFO"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", paths.daemon))?;
    let stderr = child.stderr.take().ok_or("no stderr pipe")?;
    let mut lines = BufReader::new(stderr).lines();
    let ready = lines
        .by_ref()
        .any(|l| l.is_ok_and(|l| l.contains("next refresh in")));
    // Keep draining the log so the daemon never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    if !ready {
        let _ = child.kill();
        return Err("the daemon ended before its first cycle".into());
    }
    std::thread::sleep(Duration::from_millis(300));
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut latencies = Vec::new();
    for i in 0..LATENCY_PROBES {
        let name = format!("latency-probe-{i}");
        admin.call("POST", "namespaces", Some(json!({"name": name})))?;
        let created = Instant::now();
        let url = format!("{kube_url}/api/v1/namespaces/{name}/secrets/{SECRET}");
        loop {
            let status = agent
                .get(&url)
                .call()
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            if status == 200 {
                break;
            }
            if created.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                return Err(format!("{name} got no secret within 30 s"));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        latencies.push(created.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    latencies.sort();
    Ok((latencies, peak))
}
