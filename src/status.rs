//! `ecrupdater --status`: the state of every target's pull secret, for humans (a table) or for
//! scripts (`--output json`), read by name through the same API access and RBAC as the daemon
//! (the namespace list, then one GET per target). One row per target namespace: the secret's
//! type, its registry hosts, when its credentials expire (and in how long), when they were
//! verified, who manages it, and its problems. Exit status 0 when every target is fine, 1
//! otherwise (or when the API cannot be read), so a CronJob or a shell loop can alert on it.
//!
//! Everything shown comes from the API server: it is escaped and bounded, and no credential is
//! ever printed (only the registry host names are taken from the payload).

use std::fmt::Write as _;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::{Config, Output, VerifyMode};
use crate::dockercfg::{TYPE_DOCKERCFG, TYPE_DOCKERCONFIGJSON};
use crate::kube::{KubeClient, namespaces, secrets};
use crate::refresh::{EXPIRES_ANNOTATION, MANAGED_BY_LABEL, VERIFIED_ANNOTATION};

/// A secret whose credentials expire sooner than this is reported.
pub const EXPIRY_WARNING: time::Duration = time::Duration::hours(1);
/// The longest value shown from the API (annotation, label, host).
const MAX_SHOWN: usize = 64;
/// The most registry hosts shown per secret.
const MAX_HOSTS: usize = 16;

/// One target namespace's secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The namespace.
    pub namespace: String,
    /// The secret's type (`None`: no such secret).
    pub secret_type: Option<String>,
    /// Registry hosts in the payload.
    pub hosts: Vec<String>,
    /// The expiry annotation.
    pub expires_at: Option<OffsetDateTime>,
    /// The verified-at annotation.
    pub verified_at: Option<OffsetDateTime>,
    /// The `app.kubernetes.io/managed-by` label.
    pub managed_by: Option<String>,
    /// What is wrong (empty: fine).
    pub problems: Vec<String>,
}

/// Reads every target's secret and prints the status; returns the exit status.
pub fn run(config: &Config, output: Output) -> i32 {
    let client = match KubeClient::new(&config.kube, config.timeouts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ecrupdater: --status: {e}");
            return 1;
        }
    };
    let rows = match collect(&client, config, OffsetDateTime::now_utc()) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("ecrupdater: --status: {e}");
            return 1;
        }
    };
    let now = OffsetDateTime::now_utc();
    match output {
        Output::Table => print!("{}", table(&config.secret_name, &rows, now)),
        Output::Json => println!("{}", to_json(&config.secret_name, &rows, now)),
    }
    i32::from(rows.iter().any(|r| !r.problems.is_empty()))
}

/// One row per target namespace.
pub fn collect(
    client: &KubeClient,
    config: &Config,
    now: OffsetDateTime,
) -> Result<Vec<Row>, String> {
    let list = namespaces::list_active(client, config.namespace_selector.as_deref())
        .map_err(|e| format!("listing namespaces failed: {e}"))?;
    let mut rows = Vec::new();
    for namespace in list.names {
        if !config.selection.wants(&namespace) {
            continue;
        }
        let row = match secrets::get(client, &namespace, &config.secret_name) {
            Ok(secret) => row(&namespace, secret.as_ref(), config, now),
            Err(e) => Row {
                namespace: namespace.clone(),
                secret_type: None,
                hosts: Vec::new(),
                expires_at: None,
                verified_at: None,
                managed_by: None,
                problems: vec![format!("unreadable: {}", shown(&e.to_string(), 200))],
            },
        };
        if row.secret_type.is_none() && row.problems.is_empty() {
            // No secret, and none to create (ECR_CREATE_MISSING is off): not a target.
            continue;
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The row of one namespace, from its secret (`None`: missing).
pub fn row(namespace: &str, secret: Option<&Value>, config: &Config, now: OffsetDateTime) -> Row {
    let mut row = Row {
        namespace: namespace.to_string(),
        secret_type: None,
        hosts: Vec::new(),
        expires_at: None,
        verified_at: None,
        managed_by: None,
        problems: Vec::new(),
    };
    let Some(secret) = secret else {
        if config.create_missing {
            row.problems.push("missing".into());
        }
        return row;
    };
    let secret_type = secret
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("Opaque");
    row.secret_type = Some(shown(secret_type, MAX_SHOWN));
    let annotation = |key: &str| {
        secret
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
    };
    let time_of = |key: &str| annotation(key).and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
    row.expires_at = time_of(EXPIRES_ANNOTATION);
    row.verified_at = time_of(VERIFIED_ANNOTATION);
    row.managed_by = secret
        .pointer("/metadata/labels")
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .and_then(Value::as_str)
        .map(|v| shown(v, MAX_SHOWN));
    let key = match secret_type {
        TYPE_DOCKERCONFIGJSON => ".dockerconfigjson",
        TYPE_DOCKERCFG => ".dockercfg",
        _ => {
            row.problems.push("wrong type".into());
            return row;
        }
    };
    row.hosts = secret
        .pointer(&format!("/data/{key}"))
        .and_then(Value::as_str)
        .map(|payload| hosts(payload, secret_type == TYPE_DOCKERCFG))
        .unwrap_or_default();
    if row.hosts.is_empty() {
        row.problems.push("no registry".into());
    }
    match row.expires_at {
        None if annotation(EXPIRES_ANNOTATION).is_some() => {
            row.problems.push("expiry unreadable".into())
        }
        None => row.problems.push("expiry unknown".into()),
        Some(at) if at <= now => row.problems.push("expired".into()),
        Some(at) if at - now < EXPIRY_WARNING => row.problems.push("expires within an hour".into()),
        Some(_) => {}
    }
    if row.verified_at.is_none() && config.verify != VerifyMode::Off {
        row.problems.push("not verified".into());
    }
    row
}

/// The registry hosts of a base64 payload (never anything else from it).
fn hosts(payload_base64: &str, dockercfg: bool) -> Vec<String> {
    let Ok(raw) = STANDARD.decode(payload_base64) else {
        return Vec::new();
    };
    let Ok(doc) = serde_json::from_slice::<Value>(&raw) else {
        return Vec::new();
    };
    let map = if dockercfg {
        doc.as_object()
    } else {
        doc.get("auths").and_then(Value::as_object)
    };
    map.map(|m| {
        m.keys()
            .take(MAX_HOSTS)
            .map(|k| shown(&crate::dockercfg::registry_host(k), MAX_SHOWN))
            .collect()
    })
    .unwrap_or_default()
}

/// `2026-12-02T17:00:00Z (in 11h59m)` or `(expired 2h03m ago)`.
fn when(at: Option<OffsetDateTime>, now: OffsetDateTime) -> String {
    let Some(at) = at else {
        return "-".into();
    };
    let stamp = rfc3339(at);
    let left = at - now;
    let span = |d: time::Duration| {
        let m = d.whole_minutes().abs();
        format!("{}h{:02}m", m / 60, m % 60)
    };
    if left.is_negative() {
        format!("{stamp} (expired {} ago)", span(left))
    } else {
        format!("{stamp} (in {})", span(left))
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    let at = at.replace_nanosecond(0).unwrap_or(at);
    at.format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// The table: a header, then one aligned line per row.
pub fn table(secret_name: &str, rows: &[Row], now: OffsetDateTime) -> String {
    let header = [
        "NAMESPACE",
        "TYPE",
        "REGISTRIES",
        "EXPIRES",
        "VERIFIED-AT",
        "MANAGED-BY",
        "PROBLEMS",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.namespace.clone(),
                r.secret_type.clone().unwrap_or_else(|| "-".into()),
                if r.hosts.is_empty() {
                    "-".into()
                } else {
                    r.hosts.join(",")
                },
                when(r.expires_at, now),
                r.verified_at.map_or_else(|| "-".into(), rfc3339),
                r.managed_by.clone().unwrap_or_else(|| "-".into()),
                if r.problems.is_empty() {
                    "-".into()
                } else {
                    r.problems.join(", ")
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cols: Vec<&str>| {
        let mut text = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i + 1 == cols.len() {
                text.push_str(c);
            } else {
                let _ = write!(text, "{c:<w$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in &cells {
        line(row.iter().map(String::as_str).collect());
    }
    let bad = rows.iter().filter(|r| !r.problems.is_empty()).count();
    let _ = writeln!(
        out,
        "{bad} of {} target namespaces with a problem (secret {secret_name})",
        rows.len()
    );
    out
}

/// The JSON document.
pub fn to_json(secret_name: &str, rows: &[Row], now: OffsetDateTime) -> Value {
    let targets: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "namespace": r.namespace,
                "type": r.secret_type,
                "registries": r.hosts,
                "expiresAt": r.expires_at.map(rfc3339),
                "expiresInSeconds": r.expires_at.map(|at| (at - now).whole_seconds()),
                "verifiedAt": r.verified_at.map(rfc3339),
                "managedBy": r.managed_by,
                "problems": r.problems,
            })
        })
        .collect();
    json!({
        "secret": secret_name,
        "ok": rows.iter().all(|r| r.problems.is_empty()),
        "targets": targets,
    })
}

/// Text from the API for a terminal: control characters escaped, bounded.
fn shown(text: &str, max: usize) -> String {
    crate::aws::error::excerpt(text, max)
}
