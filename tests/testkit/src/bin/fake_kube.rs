//! `fake-kube`: runs FakeKube as a process for end-to-end scripts and benchmarks.
//!
//! `fake-kube [--port N] [--namespaces N] [--ns-prefix team-] [--tls-ca-out FILE]
//! [--seed FILE.json] [--no-default-sa] [--bearer-token T]`
//!
//! Creates N namespaces named `{prefix}{i:04}` (each with a `default` ServiceAccount unless
//! `--no-default-sa`), seeds secrets from `[{"namespace":..,"secret":{..}}]`, prints exactly one
//! line `listening on http(s)://127.0.0.1:PORT`, then serves until killed. The `/_admin/`
//! endpoints (see the kube::admin module docs) are on.

use ecrupdater_testkit::FakeKube;
use serde_json::{Value, json};
use std::io::Write;

const USAGE: &str = "\
usage: fake-kube [--port N] [--namespaces N] [--ns-prefix P] [--tls-ca-out FILE] [--seed FILE.json] [--no-default-sa] [--bearer-token T]

A fake Kubernetes API server on 127.0.0.1 for scripts and benchmarks. It prints one line,
`listening on http(s)://127.0.0.1:PORT`, then serves until killed.

  --port N            listen on N (default: a free port)
  --namespaces N      create N namespaces named PREFIX0000, PREFIX0001, ... (default 0)
  --ns-prefix P       their prefix (default team-)
  --no-default-sa     no `default` ServiceAccount in them
  --seed FILE.json    secrets to put first: [{\"namespace\": ..., \"secret\": {...}}]
  --tls-ca-out FILE   serve https and write the CA certificate (PEM) to FILE
  --bearer-token T    require `Authorization: Bearer T`
  -h, --help          print this and exit

The /_admin/ endpoints are on (namespaces, secrets, stats, faults: see tests/testkit/src/kube/admin.rs).
";

fn usage(msg: &str) -> ! {
    eprintln!("fake-kube: {msg}");
    eprint!("{USAGE}");
    std::process::exit(2)
}

fn main() {
    let mut port: u16 = 0;
    let mut count: usize = 0;
    let mut prefix = "team-".to_string();
    let mut ca_out: Option<String> = None;
    let mut seed: Option<String> = None;
    let mut default_sa = true;
    let mut bearer: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| {
            args.next()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match a.as_str() {
            "--port" => {
                port = val("--port")
                    .parse()
                    .unwrap_or_else(|_| usage("bad --port"))
            }
            "--namespaces" => {
                count = val("--namespaces")
                    .parse()
                    .unwrap_or_else(|_| usage("bad --namespaces"))
            }
            "--ns-prefix" => prefix = val("--ns-prefix"),
            "--tls-ca-out" => ca_out = Some(val("--tls-ca-out")),
            "--seed" => seed = Some(val("--seed")),
            "--bearer-token" => bearer = Some(val("--bearer-token")),
            "--no-default-sa" => default_sa = false,
            "-h" | "--help" => {
                print!("{USAGE}");
                return;
            }
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    let (kube, ca) = match FakeKube::bind(port, ca_out.is_some()) {
        Ok(x) => x,
        Err(e) => usage(&format!("cannot listen on 127.0.0.1:{port}: {e}")),
    };
    if let (Some(path), Some(pem)) = (&ca_out, &ca)
        && let Err(e) = std::fs::write(path, pem)
    {
        usage(&format!("cannot write {path}: {e}"));
    }
    kube.enable_admin();
    for i in 0..count {
        let name = format!("{prefix}{i:04}");
        kube.add_namespace(&name, &[]);
        if default_sa {
            kube.put_service_account(&name, json!({"metadata": {"name": "default"}}));
        }
    }
    if let Some(path) = seed {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| usage(&format!("cannot read {path}: {e}")));
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| usage(&format!("{path} is not JSON: {e}")));
        let Some(items) = v.as_array() else {
            usage("seed file must be a JSON array")
        };
        for item in items {
            let (Some(ns), Some(secret)) = (
                item.get("namespace").and_then(Value::as_str),
                item.get("secret"),
            ) else {
                usage("seed entries need namespace and secret")
            };
            kube.put_secret(ns, secret.clone());
        }
    }
    if let Some(t) = &bearer {
        kube.require_bearer_token(Some(t));
    }
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on {}", kube.base_url());
    let _ = out.flush();
    loop {
        std::thread::park();
    }
}
