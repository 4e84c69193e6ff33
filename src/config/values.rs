//! The value parsers and checks every part of the configuration shares: whole seconds,
//! booleans, comma-separated lists, URLs (parsed by `http::Uri`, ureq's own parser: a host, a
//! port in 1-65535, no user info, no fragment), AWS region names, DNS-1123 subdomains, and the
//! default regional endpoint of an AWS service. The parsers are given the variable's name and
//! return a [`ConfigError`]; the `validate_*` checks return the problem alone, for the caller to
//! name the variable. No error message ever repeats a URL's user info.

use super::ConfigError;

/// The regional endpoint of an AWS service, in the region's partition (`.amazonaws.com.cn` in
/// China, the isolated partitions' own suffixes).
pub fn default_endpoint(service_prefix: &str, region: &str) -> String {
    let suffix = match region.split('-').take(2).collect::<Vec<_>>().as_slice() {
        ["cn", _] => "amazonaws.com.cn",
        [_, "iso"] => "c2s.ic.gov",
        [_, "isob"] => "sc2s.sgov.gov",
        [_, "isoe"] => "cloud.adc-e.uk",
        [_, "isof"] => "csp.hci.ic.gov",
        _ => "amazonaws.com",
    };
    format!("https://{service_prefix}.{region}.{suffix}")
}

/// A region name such as `eu-west-1`, `us-gov-west-1` or `cn-north-1` (the rule is
/// [`crate::names::aws::is_region_name`]).
pub(super) fn validate_region(region: &str) -> Result<(), String> {
    if crate::names::aws::is_region_name(region) {
        Ok(())
    } else {
        Err(format!(
            "not an AWS region name: {:?} (expected e.g. eu-west-1, us-gov-west-1, cn-north-1)",
            shown(region)
        ))
    }
}

/// The longest URL accepted (browsers' and proxies' usual limit).
const MAX_URL_LEN: usize = 2048;
/// The longest host name DNS allows.
const MAX_HOST_LEN: usize = 253;

/// A value as it may be shown in an error: user info (`user:password@`) masked, at most 100
/// characters, control characters escaped.
pub(super) fn shown(value: &str) -> String {
    let masked = match (value.find("://"), value.rfind('@')) {
        (Some(start), Some(at)) if at > start => {
            format!("{}://***@{}", &value[..start], &value[at + 1..])
        }
        (None, Some(at)) => format!("***@{}", &value[at + 1..]),
        _ => value.to_string(),
    };
    let mut out: String = masked
        .chars()
        .take(100)
        .flat_map(char::escape_debug)
        .collect();
    if masked.chars().count() > 100 {
        out.push_str("...");
    }
    out
}

/// What a URL setting may hold besides scheme, host and port.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum UrlKind {
    /// A base URL (API server, AWS endpoints, IMDS): `http(s)`, an optional path prefix.
    Base,
    /// A whole URL to GET (the container endpoint): `http(s)`, a path and a query.
    Full,
    /// A forward proxy: `http`, `https` or `socks*` (no scheme means http), user info allowed
    /// (ureq sends it to the proxy as Proxy-Authorization), no path.
    Proxy,
}

/// A URL, checked by `http::Uri` and by hand where `Uri` is lenient (it accepts port 99999 and
/// silently drops a `#fragment`): returned without a trailing slash.
pub(super) fn parse_url(name: &str, url: &str, kind: UrlKind) -> Result<String, ConfigError> {
    let bad = |problem: &str| ConfigError::new(name, format!("{problem}: {}", shown(url)));
    if url.len() > MAX_URL_LEN {
        return Err(ConfigError::new(
            name,
            format!("is {} bytes long, more than {MAX_URL_LEN}", url.len()),
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("holds white space or control characters"));
    }
    if url.contains('#') {
        return Err(bad(
            "holds a '#' (a fragment: everything after it would be silently dropped)",
        ));
    }
    let with_scheme = if kind == UrlKind::Proxy && !url.contains("://") {
        format!("http://{url}")
    } else {
        url.to_string()
    };
    let uri: ureq::http::Uri = with_scheme
        .parse()
        .map_err(|e| bad(&format!("is not a valid URL ({e})")))?;
    let schemes: &[&str] = match kind {
        UrlKind::Base | UrlKind::Full => &["http", "https"],
        UrlKind::Proxy => &[
            "http", "https", "socks", "socks4", "socks4a", "socks5", "socks5h",
        ],
    };
    match uri.scheme_str() {
        Some(scheme) if schemes.contains(&scheme) => {}
        _ => {
            return Err(bad(&format!(
                "must start with {}",
                schemes
                    .iter()
                    .map(|s| format!("{s}://"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )));
        }
    }
    let authority = uri.authority().ok_or_else(|| bad("has no host"))?;
    let host_and_port = match authority.as_str().rsplit_once('@') {
        Some(_) if kind != UrlKind::Proxy => {
            return Err(ConfigError::new(
                name,
                "must not hold a user name or password (user@ or user:password@ before the host)",
            ));
        }
        Some((_, rest)) => rest,
        None => authority.as_str(),
    };
    let host = authority.host();
    let port = host_and_port.strip_prefix(host).unwrap_or_default();
    validate_host(host).map_err(|problem| bad(&problem))?;
    if let Some(port) = port.strip_prefix(':') {
        let valid =
            port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p >= 1);
        if !valid {
            return Err(bad(&format!(
                "has port {:?}, not a port number from 1 to 65535",
                shown(port)
            )));
        }
    } else if !port.is_empty() {
        return Err(bad("has no valid host"));
    }
    if kind != UrlKind::Full && uri.query().is_some() {
        return Err(bad("must not hold a query ('?')"));
    }
    if kind == UrlKind::Proxy && !matches!(uri.path(), "" | "/") {
        return Err(bad("must not hold a path"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// An `http://` or `https://` base URL with a valid host and port; returned without a trailing
/// slash.
pub(super) fn parse_base_url(name: &str, url: &str) -> Result<String, ConfigError> {
    parse_url(name, url, UrlKind::Base)
}

/// A host: a DNS name (letters, digits, `-`, `.`, `_`; at most 253 characters, labels of at
/// most 63) or an IP address (IPv6 in brackets).
fn validate_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("has no host".to_string());
    }
    if let Some(v6) = host.strip_prefix('[') {
        return match v6.strip_suffix(']').map(str::parse::<std::net::Ipv6Addr>) {
            Some(Ok(_)) => Ok(()),
            _ => Err("has an invalid IPv6 address".to_string()),
        };
    }
    if host.len() > MAX_HOST_LEN {
        return Err(format!(
            "has a host of {} characters, more than {MAX_HOST_LEN}",
            host.len()
        ));
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if host.trim_end_matches('.').split('.').all(label_ok) {
        Ok(())
    } else {
        Err("has no valid host".to_string())
    }
}

/// A whole number of seconds within `min..=max`.
pub(super) fn parse_seconds(
    name: &str,
    value: &str,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let n: u64 = value.parse().map_err(|_| {
        ConfigError::new(
            name,
            format!("must be a whole number of seconds, got {value:?}"),
        )
    })?;
    if n < min || n > max {
        return Err(ConfigError::new(
            name,
            format!("must be between {min} and {max} seconds, got {n}"),
        ));
    }
    Ok(n)
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), any case.
pub(super) fn parse_bool(name: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::new(
            name,
            format!("must be true or false, got {value:?}"),
        )),
    }
}

/// A comma-separated list; blanks around items and empty items are dropped.
pub(super) fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A DNS-1123 subdomain, as Kubernetes requires of a Secret's name ([`crate::names`]), with the
/// reason when it is not one.
pub fn validate_dns_subdomain(name: &str) -> Result<(), String> {
    if name.len() > crate::names::SUBDOMAIN_MAX_LEN {
        Err(format!(
            "must be at most {} characters, got {}",
            crate::names::SUBDOMAIN_MAX_LEN,
            name.len()
        ))
    } else if crate::names::is_dns1123_subdomain(name) {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid Kubernetes name (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{config, error_name};

    #[test]
    fn urls_are_parsed_for_real() {
        let long_host = format!("http://{}.example/", "a".repeat(70_000));
        let refused: [(&str, &str); 12] = [
            ("KUBERNETES_API_ENDPOINT", "http://127.0.0.1:99999"),
            ("KUBERNETES_API_ENDPOINT", "http://127.0.0.1:0"),
            ("KUBERNETES_API_ENDPOINT", "http://127.0.0.1:"),
            ("KUBERNETES_API_ENDPOINT", "https://[::1"),
            ("KUBERNETES_API_ENDPOINT", "https://[::zz]:443"),
            (
                "KUBERNETES_API_ENDPOINT",
                "https://api.example/k8s#/clusters/c1",
            ),
            (
                "KUBERNETES_API_ENDPOINT",
                "https://admin:hunter2-password@api.example",
            ),
            ("AWS_ENDPOINT_URL", "https://"),
            ("AWS_ENDPOINT_URL_ECR", "https://ecr.example/?x=1"),
            ("AWS_ENDPOINT_URL_STS", "https://a..b"),
            (
                "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                "http://169.254.169.254:65536",
            ),
            ("HTTPS_PROXY", "http://proxy.example:3128/path"),
        ];
        for (name, url) in refused {
            let e = config(&[(name, url)]).expect_err(url);
            assert_eq!(e.name, name, "{url}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
        let leaked: &'static str = Box::leak(long_host.into_boxed_str());
        let e = config(&[("KUBERNETES_API_ENDPOINT", leaked)]).expect_err("long");
        assert!(e.to_string().len() < 300, "{e}");
        for (name, url) in [
            (
                "KUBERNETES_API_ENDPOINT",
                "https://[fd00::1]:6443/k8s/clusters/c-1",
            ),
            ("KUBERNETES_API_ENDPOINT", "http://localhost:8001/"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("HTTPS_PROXY", "http://user:pass@proxy.example:3128"),
            ("https_proxy", "proxy.example:3128"),
            ("ALL_PROXY", "socks5h://127.0.0.1:1080"),
        ] {
            assert!(config(&[(name, url)]).is_ok(), "{name}={url}");
        }
        assert_eq!(error_name(&[("all_proxy", "ftp://proxy:21")]), "all_proxy");
    }

    #[test]
    fn shown_never_repeats_user_info() {
        assert_eq!(shown("https://u:secret@h/x"), "https://***@h/x");
        assert_eq!(shown("u:secret@h:1"), "***@h:1");
        assert!(shown(&"x".repeat(500)).len() < 110);
        assert_eq!(shown("a\nb"), "a\\nb");
    }

    #[test]
    fn partition_endpoints() {
        assert_eq!(
            default_endpoint("api.ecr", "us-iso-east-1"),
            "https://api.ecr.us-iso-east-1.c2s.ic.gov"
        );
        assert_eq!(
            default_endpoint("sts", "cn-north-1"),
            "https://sts.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            default_endpoint("sts", "us-gov-west-1"),
            "https://sts.us-gov-west-1.amazonaws.com"
        );
    }

    #[test]
    fn regions() {
        for region in [
            "us-gov-west-1",
            "cn-north-1",
            "il-central-1",
            "us-isob-east-1",
        ] {
            assert!(validate_region(region).is_ok(), "{region}");
        }
        assert_eq!(error_name(&[("AWS_REGION", "a-b-1")]), "AWS_REGION");
    }
}
