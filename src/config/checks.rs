//! The settings of the credential checks and of the network paths they use: `ECR_VERIFY` (how a
//! registry's refusal of a new token is handled), `AWS_CA_BUNDLE` (a PEM file of extra CAs for
//! every AWS and registry HTTPS call) and `ECR_REGISTRY_CONNECT_TO` (curl's `--connect-to`
//! form). Each is read and checked here, before any network call; an error names the variable.

use std::path::Path;
use std::sync::Arc;

use super::{ConfigError, Env};

/// The most bytes read from `AWS_CA_BUNDLE` (a full Mozilla bundle is about 220 KiB).
pub const CA_BUNDLE_CAP: u64 = 1024 * 1024;

/// `ECR_VERIFY`: what a registry's answer to the new credentials decides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VerifyMode {
    /// No check.
    Off,
    /// A refusal is logged as an error; the secrets are written anyway (the default).
    #[default]
    Warn,
    /// A refusal writes nothing: every secret keeps what it holds, and the cycle fails.
    Enforce,
}

/// One `ECR_REGISTRY_CONNECT_TO` rule: connections for `host:port` go to
/// `connect_host:connect_port`, while TLS still checks `host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTo {
    /// The host as written in URLs (lower case; an IPv6 address without brackets).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Where to connect instead (an IPv6 address without brackets).
    pub connect_host: String,
    /// And on which port.
    pub connect_port: u16,
}

/// How the AWS and registry HTTPS calls are made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Network {
    /// `AWS_CA_BUNDLE`: extra trusted CA certificates (DER), added to the Mozilla roots.
    pub ca_bundle: Option<Arc<Vec<Vec<u8>>>>,
    /// `ECR_REGISTRY_CONNECT_TO`.
    pub connect_to: Vec<ConnectTo>,
}

/// Reads `ECR_VERIFY`.
pub fn verify_mode(env: &Env) -> Result<VerifyMode, ConfigError> {
    match env
        .get("ECR_VERIFY")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("warn") => Ok(VerifyMode::Warn),
        Some("off") => Ok(VerifyMode::Off),
        Some("enforce") => Ok(VerifyMode::Enforce),
        Some(other) => Err(ConfigError::new(
            "ECR_VERIFY",
            format!(
                "must be off, warn or enforce, got {:?}",
                super::values::shown(other)
            ),
        )),
    }
}

/// Reads `AWS_CA_BUNDLE` and `ECR_REGISTRY_CONNECT_TO`.
pub fn network(env: &Env) -> Result<Network, ConfigError> {
    let ca_bundle = match env.get("AWS_CA_BUNDLE") {
        None => None,
        Some(path) => Some(Arc::new(
            read_ca_bundle(Path::new(path))
                .map_err(|problem| ConfigError::new("AWS_CA_BUNDLE", problem))?,
        )),
    };
    let connect_to = match env.get("ECR_REGISTRY_CONNECT_TO") {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(parse_connect_to)
            .collect::<Result<_, _>>()
            .map_err(|problem| ConfigError::new("ECR_REGISTRY_CONNECT_TO", problem))?,
    };
    Ok(Network {
        ca_bundle,
        connect_to,
    })
}

/// The certificates of a PEM file: a regular file of at most [`CA_BUNDLE_CAP`] bytes holding at
/// least one certificate, each of which must parse.
fn read_ca_bundle(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let shown = path.display();
    let text = crate::files::read_small_file(path, CA_BUNDLE_CAP)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(text.as_bytes()) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c.der().to_vec()),
            Ok(_) => {}
            Err(e) => return Err(format!("{shown} is not valid PEM: {e}")),
        }
    }
    if certs.is_empty() {
        return Err(format!("{shown} holds no PEM certificate"));
    }
    for der in &certs {
        let mut store = rustls::RootCertStore::empty();
        store
            .add(rustls::pki_types::CertificateDer::from(der.as_slice()))
            .map_err(|e| format!("{shown} holds a certificate that does not parse: {e}"))?;
    }
    Ok(certs)
}

/// One `HOST:PORT:CONNECT_HOST:CONNECT_PORT` rule; IPv6 addresses in brackets.
fn parse_connect_to(rule: &str) -> Result<ConnectTo, String> {
    let bad = |why: &str| {
        format!(
            "{why} in {:?} (want HOST:PORT:CONNECT_HOST:CONNECT_PORT, IPv6 in brackets)",
            super::values::shown(rule)
        )
    };
    let mut parts = Vec::with_capacity(4);
    let mut rest = rule;
    for i in 0..4 {
        let (part, after) = if let Some(inner) = rest.strip_prefix('[') {
            let (addr, after) = inner.split_once(']').ok_or_else(|| bad("an open ["))?;
            if addr.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("not an IPv6 address in brackets"));
            }
            (addr, after)
        } else {
            let end = rest.find(':').unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        parts.push(part);
        rest = match (i, after.strip_prefix(':')) {
            (3, None) if after.is_empty() => "",
            (0..=2, Some(next)) => next,
            _ => return Err(bad("not four fields")),
        };
    }
    let host_ok = |h: &str| {
        !h.is_empty()
            && h.len() <= 253
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
    };
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("a port that is not 1 to 65535"))
    };
    if !host_ok(parts[0]) || !host_ok(parts[2]) {
        return Err(bad("an empty or invalid host"));
    }
    Ok(ConnectTo {
        host: parts[0].to_ascii_lowercase(),
        port: port(parts[1])?,
        connect_host: parts[2].to_string(),
        connect_port: port(parts[3])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&'static str, &'static str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn verify_modes() {
        assert_eq!(verify_mode(&env(&[])), Ok(VerifyMode::Warn));
        assert_eq!(
            verify_mode(&env(&[("ECR_VERIFY", "Enforce")])),
            Ok(VerifyMode::Enforce)
        );
        assert_eq!(
            verify_mode(&env(&[("ECR_VERIFY", "off")])),
            Ok(VerifyMode::Off)
        );
        let e = verify_mode(&env(&[("ECR_VERIFY", "strict")])).expect_err("refused");
        assert_eq!(e.name, "ECR_VERIFY");
        assert!(e.problem.contains("strict"), "{e}");
    }

    #[test]
    fn connect_to_rules() {
        let n = network(&env(&[(
            "ECR_REGISTRY_CONNECT_TO",
            "123.dkr.ecr.eu-west-1.amazonaws.com:443:127.0.0.1:5000, [fd00::1]:443:[::1]:8443",
        )]))
        .expect("valid");
        assert_eq!(
            n.connect_to,
            vec![
                ConnectTo {
                    host: "123.dkr.ecr.eu-west-1.amazonaws.com".into(),
                    port: 443,
                    connect_host: "127.0.0.1".into(),
                    connect_port: 5000,
                },
                ConnectTo {
                    host: "fd00::1".into(),
                    port: 443,
                    connect_host: "::1".into(),
                    connect_port: 8443,
                },
            ]
        );
        for bad in [
            "host:443:127.0.0.1",
            "host:443:127.0.0.1:0",
            "host:443:127.0.0.1:5000:9",
            ":443:127.0.0.1:5000",
            "host:https:127.0.0.1:5000",
            "[fd00::1:443:x:1",
            "ho st:443:x:1",
        ] {
            let pairs = [("ECR_REGISTRY_CONNECT_TO", bad)];
            let e = network(&Env::from_pairs(pairs)).expect_err(bad);
            assert_eq!(e.name, "ECR_REGISTRY_CONNECT_TO", "{bad}");
        }
    }

    #[test]
    fn ca_bundle_must_be_a_small_pem_file_of_certificates() {
        let dir = std::env::temp_dir().join(format!("ecrupdater-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let named = |path: &Path| {
            let p = path.to_str().expect("utf-8").to_string();
            network(&Env::from_pairs([("AWS_CA_BUNDLE", p.as_str())]))
        };
        let e = named(&dir.join("missing.pem")).expect_err("missing");
        assert_eq!(e.name, "AWS_CA_BUNDLE");
        let e = named(Path::new("/dev/zero")).expect_err("a device");
        assert!(e.problem.contains("not a regular file"), "{e}");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").expect("write");
        let e = named(&empty).expect_err("no certificate");
        assert!(e.problem.contains("no PEM certificate"), "{e}");
        let big = dir.join("big.pem");
        std::fs::write(&big, vec![b'a'; CA_BUNDLE_CAP as usize + 1]).expect("write");
        let e = named(&big).expect_err("too big");
        assert!(e.problem.contains("larger than"), "{e}");
        let junk = dir.join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN CERTIFICATE-----\nMIIBkzCC\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        assert_eq!(named(&junk).expect_err("junk").name, "AWS_CA_BUNDLE");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
