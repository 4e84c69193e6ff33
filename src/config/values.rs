//! The value parsers and checks every part of the configuration shares: whole seconds,
//! booleans, comma-separated lists, `http(s)://` base URLs, AWS region names, DNS-1123
//! subdomains, and the default regional endpoint of an AWS service. The parsers are given the
//! variable's name and return a [`ConfigError`]; the `validate_*` checks return the problem
//! alone, for the caller to name the variable.

use super::ConfigError;

/// The regional endpoint of an AWS service (`.amazonaws.com.cn` in the China partition).
pub fn default_endpoint(service_prefix: &str, region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://{service_prefix}.{region}.{suffix}")
}

/// A region name such as `eu-west-1`, `us-gov-west-1` or `cn-north-1`.
pub(super) fn validate_region(region: &str) -> Result<(), String> {
    let parts: Vec<&str> = region.split('-').collect();
    let well_formed = parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty();
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "not an AWS region name: {region:?} (expected e.g. eu-west-1)"
        ))
    }
}

/// An `http://` or `https://` URL with a host; returned without a trailing slash.
pub(super) fn parse_base_url(name: &str, url: &str) -> Result<String, ConfigError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            ConfigError::new(
                name,
                format!("must start with http:// or https://, got {url:?}"),
            )
        })?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(ConfigError::new(
            name,
            format!("has no valid host: {url:?}"),
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
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

/// A DNS-1123 subdomain, as Kubernetes requires of a Secret's name.
pub fn validate_dns_subdomain(name: &str) -> Result<(), String> {
    if name.len() > 253 {
        return Err(format!(
            "must be at most 253 characters, got {}",
            name.len()
        ));
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid Kubernetes name (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)"
        ))
    }
}
