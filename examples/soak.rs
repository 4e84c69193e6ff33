//! Soak benchmark (scripts/soak.sh runs it): the daemon, built from the library in this process,
//! runs N short refresh cycles (default 10,000) against a `fake-kube` and a `fake-ecr` process
//! (tests/testkit), with a random fault injected before about one cycle in five: API 500s,
//! 503s, plain-text 429s, resets, 404s, 409 conflicts, 410 on continue tokens, slow answers and
//! timeouts, namespaces deleted and created; ECR throttling, 5xx, resets, refusals and
//! timeouts. Each cycle that fetches a token gets a new password, so every secret is patched.
//!
//! It samples this process's resident memory (VmRSS, VmHWM) and open file descriptors at the
//! start, every 1,000 cycles and at the end, and prints them with the cycle outcomes: figures
//! only, nothing is asserted. A leak shows as RSS or descriptors growing from sample to sample.
//!
//! `cargo run --release --example soak -- [CYCLES] [--seed N] [--no-faults] [--fake-kube PATH]
//! [--fake-ecr PATH]` (the fakes default to target/release/fake-kube and target/release/fake-ecr;
//! `--no-faults` gives the baseline).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ecrupdater::config::{Config, Env, Flags};
use ecrupdater::daemon::{CycleError, Daemon};
use ecrupdater::health::Health;
use ecrupdater::logging::{self, LogSettings};
use serde_json::{Value, json};

#[path = "support/fakes.rs"]
mod fakes;

use fakes::{EcrControl, KubeAdmin, Usage, mib, start_fake, usage};

const SECRET: &str = "soak-pull";
const NAMESPACES: usize = 6;
const PAGE: usize = 4;
const SAMPLE_EVERY: u64 = 1000;

/// xorshift64*: reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Options {
    cycles: u64,
    seed: u64,
    fake_kube: String,
    fake_ecr: String,
    faults: bool,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        cycles: 10_000,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
        fake_kube: "target/release/fake-kube".into(),
        fake_ecr: "target/release/fake-ecr".into(),
        faults: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--seed" => o.seed = value("--seed")?.parse().map_err(|_| "bad --seed")?,
            "--fake-kube" => o.fake_kube = value("--fake-kube")?,
            "--fake-ecr" => o.fake_ecr = value("--fake-ecr")?,
            "--no-faults" => o.faults = false,
            n => o.cycles = n.parse().map_err(|_| format!("unknown argument {n:?}"))?,
        }
    }
    o.seed |= 1;
    Ok(o)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("soak: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let o = options()?;
    let ns_count = NAMESPACES.to_string();
    let (_kube_process, kube_url, _, _) = start_fake(
        &o.fake_kube,
        &[
            "--namespaces",
            &ns_count,
            "--no-default-sa",
            "--ns-prefix",
            "soak-",
        ],
    )?;
    let (_ecr_process, ecr_url, ecr_stdin, ecr_stdout) = start_fake(&o.fake_ecr, &[])?;
    let mut ecr = EcrControl {
        stdin: ecr_stdin.ok_or("no stdin pipe")?,
        stdout: ecr_stdout,
    };
    let admin = KubeAdmin {
        agent: ureq::Agent::new_with_defaults(),
        base: kube_url.clone(),
    };
    // Pages of PAGE namespaces: every list follows continue tokens (and can meet a 410).
    admin.call("POST", "config", Some(json!({"max_page_size": PAGE})))?;

    // Warnings and errors go to standard error (the script keeps them in a file), masked as
    // in the daemon; the logger is part of the daemon side being measured.
    let log_settings = LogSettings::from_env(Some("/nonexistent/logging.json"), Some("WARNING"))
        .map_err(|e| e.to_string())?;
    logging::init(log_settings);

    let env = Env::from_pairs([
        ("K8S_PULL_SECRET_NAME", SECRET),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL_ECR", ecr_url.as_str()),
        ("ECR_VERIFY", "off"),
        ("AWS_ACCESS_KEY_ID", "AKIASOAKSOAKSOAK"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "soak/secret+access+key/0123456789abcdefgh",
        ),
        ("KUBERNETES_API_ENDPOINT", kube_url.as_str()),
        ("ECR_CREATE_MISSING", "true"),
        ("ECR_HTTP_CONNECT_TIMEOUT", "1"),
        ("ECR_HTTP_TIMEOUT", "1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]);
    let config = Config::from_env(&env, Flags::default()).map_err(|e| e.to_string())?;
    let mut daemon = Daemon::from_config(config, Health::new())?;
    daemon.kube().set_retry_pause(Duration::from_millis(1));

    let mut rng = Rng(o.seed);
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() + 12 * 3600)
        .unwrap_or(0);
    let mut outcomes: BTreeMap<&str, u64> = BTreeMap::new();
    let mut faults: BTreeMap<&str, u64> = BTreeMap::new();
    let mut names: Vec<String> = (0..NAMESPACES).map(|i| format!("soak-{i:04}")).collect();
    let mut next_name = NAMESPACES;

    println!(
        "soak: {} cycles, seed {}, {NAMESPACES} namespaces in pages of {PAGE}, API {kube_url}, ECR {ecr_url}",
        o.cycles, o.seed
    );
    let start = usage();
    let mut peak_rss = start.rss_kib;
    let mut max_fds = start.fds;
    let header = |label: &str, u: Usage, elapsed: f64| {
        println!(
            "{label:>12}: rss {:7.2} MiB  hwm {:7.2} MiB  fds {:3}  threads {:2}  ({elapsed:6.1} s)",
            mib(u.rss_kib),
            mib(u.hwm_kib),
            u.fds,
            u.threads
        );
    };
    header("start", start, 0.0);
    let started = Instant::now();
    let mut kube_fault_pending = false;
    let mut ecr_fault_pending = false;
    for cycle in 1..=o.cycles {
        if kube_fault_pending {
            admin.call("DELETE", "faults", None)?;
            kube_fault_pending = false;
        }
        if ecr_fault_pending || cycle % 200 == 0 {
            ecr.send("clear")?;
            ecr_fault_pending = false;
        }
        if cycle % 200 == 0 {
            admin.call("POST", "requests/clear", None)?;
        }
        // Nine cycles in ten fetch a new token, with a new password: every secret is patched.
        let force = rng.below(10) != 0;
        if force {
            let password = format!("soak-password-{cycle}-{:016x}", rng.next());
            ecr.send(&format!("token AWS {password} {expires}"))?;
        }
        let ns = names[rng.below(names.len() as u64) as usize].clone();
        let secret = format!("/api/v1/namespaces/{ns}/secrets/{SECRET}");
        let list = "/api/v1/namespaces?limit=";
        let cont = "/api/v1/namespaces?limit=500&fieldSelector=status.phase%3DActive&continue=";
        let roll = if o.faults { rng.below(1000) } else { 999 };
        let times = 1 + rng.below(3);
        let fault: Option<&str> = match roll {
            0..=29 => {
                let kind = json!({"status": [500, "InternalError"]});
                admin.fault(Some("PATCH"), &secret, times, kind)?;
                Some("api 500")
            }
            30..=49 => {
                let kind = json!({"status": [503, "ServiceUnavailable"]});
                admin.fault(Some("GET"), list, times, kind)?;
                Some("api 503 on list")
            }
            50..=69 => {
                let kind = json!({"plain_too_many_requests": 0});
                admin.fault(Some("PATCH"), &secret, times, kind)?;
                Some("api plain 429")
            }
            70..=89 => {
                let path = if rng.below(2) == 0 { list } else { &secret };
                admin.fault(None, path, times, json!("reset"))?;
                Some("api reset")
            }
            90..=104 => {
                admin.fault(Some("PATCH"), &secret, 1 + rng.below(2), json!("conflict"))?;
                Some("api 409 conflict")
            }
            105..=119 => {
                admin.fault(Some("GET"), cont, 1 + rng.below(4), json!("gone"))?;
                Some("api 410 on continue")
            }
            120..=129 => {
                let kind = json!({"status": [404, "NotFound"]});
                admin.fault(Some("PATCH"), &secret, 1, kind)?;
                Some("api 404 on patch")
            }
            130..=139 => {
                admin.fault(None, &secret, 1, json!({"delay_ms": 20}))?;
                Some("api slow (20 ms)")
            }
            140 => {
                admin.fault(Some("GET"), list, 1, json!({"delay_ms": 2500}))?;
                Some("api timeout")
            }
            141..=160 => {
                // A namespace goes, another comes.
                let gone = names.remove(rng.below(names.len() as u64) as usize);
                admin.call("DELETE", &format!("namespaces/{gone}"), None)?;
                let new = format!("soak-{next_name:04}");
                next_name += 1;
                admin.call("POST", "namespaces", Some(json!({"name": new})))?;
                names.push(new);
                Some("namespace churn")
            }
            161..=180 if force => {
                ecr.send("fault throttling")?;
                Some("ecr throttling")
            }
            181..=183 if force => {
                ecr.send("fault status 500 ServerException")?;
                Some("ecr 500")
            }
            184..=185 if force => {
                ecr.send("fault reset")?;
                Some("ecr reset")
            }
            186..=190 if force => {
                ecr.send("fault xml 403 UnrecognizedClientException")?;
                Some("ecr 403 refused")
            }
            191 if force => {
                ecr.send("fault delay 2500")?;
                Some("ecr timeout")
            }
            _ => None,
        };
        if let Some(kind) = fault {
            *faults.entry(kind).or_default() += 1;
            kube_fault_pending |= kind.starts_with("api");
            ecr_fault_pending |= kind.starts_with("ecr");
        }
        match daemon.cycle(force) {
            Ok(report) => {
                let failed = report.failures().len();
                *outcomes.entry("cycle ok").or_default() += u64::from(failed == 0);
                *outcomes.entry("cycle with a failed namespace").or_default() +=
                    u64::from(failed > 0);
                *outcomes.entry("secrets created").or_default() += report.created() as u64;
                *outcomes.entry("secrets updated").or_default() += report.updated() as u64;
                *outcomes.entry("secrets unchanged").or_default() += report.unchanged() as u64;
                *outcomes.entry("secrets skipped").or_default() += report.skipped() as u64;
                *outcomes.entry("secrets failed").or_default() += failed as u64;
            }
            Err(CycleError::Aws(_)) => *outcomes.entry("cycle failed: no token").or_default() += 1,
            Err(CycleError::Unreachable(_)) => {
                *outcomes.entry("cycle failed: API unreachable").or_default() += 1
            }
            Err(CycleError::Kube(_)) => {
                *outcomes.entry("cycle failed: list refused").or_default() += 1
            }
        }
        let now = usage();
        peak_rss = peak_rss.max(now.rss_kib);
        max_fds = max_fds.max(now.fds);
        if cycle % SAMPLE_EVERY == 0 || cycle == o.cycles {
            header(
                &format!("cycle {cycle}"),
                now,
                started.elapsed().as_secs_f64(),
            );
        }
    }
    let elapsed = started.elapsed();

    // One clean cycle with a last token, then every secret must hold it.
    admin.call("DELETE", "faults", None)?;
    ecr.send("clear")?;
    let password = format!("soak-password-final-{:016x}", rng.next());
    ecr.send(&format!("token AWS {password} {expires}"))?;
    let last = daemon.cycle(true);
    let secrets = admin.call("GET", "secrets", None)?;
    let secrets = secrets.as_array().cloned().unwrap_or_default();
    let current = secrets
        .iter()
        .filter(|item| {
            item["secret"]["metadata"]["name"] == SECRET && holds(&item["secret"], &password)
        })
        .count();
    let end = usage();

    println!("faults injected ({} in all):", faults.values().sum::<u64>());
    for (kind, n) in &faults {
        println!("  {kind:<32} {n}");
    }
    println!("outcomes:");
    for (kind, n) in &outcomes {
        println!("  {kind:<32} {n}");
    }
    println!(
        "final clean cycle: {}; {current} of {} target namespaces hold the last token",
        match &last {
            Ok(r) if r.failures().is_empty() => "ok".to_string(),
            Ok(r) => format!("{} failed", r.failures().len()),
            Err(e) => format!("failed: {e:?}"),
        },
        names.len()
    );
    println!(
        "cycles: {}  time: {:.1} s ({:.2} ms per cycle)",
        o.cycles,
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / o.cycles.max(1) as f64
    );
    println!(
        "RSS: start {:.2} MiB, peak {:.2} MiB (sampled max {:.2} MiB), end {:.2} MiB",
        mib(start.rss_kib),
        mib(end.hwm_kib),
        mib(peak_rss),
        mib(end.rss_kib)
    );
    println!(
        "open fds: start {}, max {}, end {}; threads: start {}, end {}",
        start.fds, max_fds, end.fds, start.threads, end.threads
    );
    Ok(())
}

/// Whether a secret's docker config JSON holds `password` with a consistent `auth`.
fn holds(secret: &Value, password: &str) -> bool {
    let Some(data) = secret["data"][".dockerconfigjson"].as_str() else {
        return false;
    };
    let Ok(raw) = STANDARD.decode(data) else {
        return false;
    };
    let Ok(doc) = serde_json::from_slice::<Value>(&raw) else {
        return false;
    };
    let Some(auths) = doc["auths"].as_object() else {
        return false;
    };
    let auth = STANDARD.encode(format!("AWS:{password}"));
    !auths.is_empty()
        && auths.values().all(|e| {
            e["password"] == password && e["username"] == "AWS" && e["auth"] == auth.as_str()
        })
}
