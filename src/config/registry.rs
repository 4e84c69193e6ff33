//! `ECR_REGISTRIES`: the [`Registry`] hosts whose logins go into each pull secret, each parsed
//! into the region whose token it takes and the API (private ECR or ECR Public) and endpoint
//! that hand it out, with the endpoint overrides applied and duplicate hosts dropped.

use super::values::{default_endpoint, parse_base_url, shown, split_list};
use super::{ConfigError, Env};

/// Which ECR API hands out a registry's token (the client in `aws::ecr` talks to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Private registries (`<account>.dkr.ecr.<region>.amazonaws.com`): SigV4 service `ecr`.
    Private,
    /// ECR Public (`public.ecr.aws`): SigV4 service `ecr-public`, region us-east-1.
    Public,
}

/// A registry whose login goes into the pull secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// The registry host, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com` or `public.ecr.aws`.
    pub host: String,
    /// The region whose token it takes (us-east-1 for ECR Public).
    pub region: String,
    /// Which API hands out its token.
    pub api: Api,
    /// That API's endpoint.
    pub endpoint: String,
}

/// `ECR_REGISTRIES`: comma-separated registry hosts (an `https://` prefix is allowed).
pub(super) fn registries(env: &Env) -> Result<Vec<Registry>, ConfigError> {
    let Some(list) = env.get("ECR_REGISTRIES") else {
        return Ok(Vec::new());
    };
    let mut out: Vec<Registry> = Vec::new();
    for item in split_list(list) {
        let registry =
            parse_registry(&item, env).map_err(|p| ConfigError::new("ECR_REGISTRIES", p))?;
        if !out.iter().any(|r| r.host == registry.host) {
            out.push(registry);
        }
    }
    Ok(out)
}

/// One registry host: `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]` or `public.ecr.aws`.
fn parse_registry(item: &str, env: &Env) -> Result<Registry, String> {
    let host = item
        .strip_prefix("https://")
        .unwrap_or(item)
        .trim_end_matches('/')
        .to_ascii_lowercase();
    let override_for = |var: &'static str| -> Result<Option<String>, String> {
        let (name, url) = match (env.get(var), env.get("AWS_ENDPOINT_URL")) {
            (Some(url), _) => (var, url),
            (None, Some(url)) => ("AWS_ENDPOINT_URL", url),
            (None, None) => return Ok(None),
        };
        parse_base_url(name, url)
            .map(Some)
            .map_err(|e| e.to_string())
    };
    if host == "public.ecr.aws" {
        return Ok(Registry {
            endpoint: override_for("AWS_ENDPOINT_URL_ECR_PUBLIC")?
                .unwrap_or_else(|| "https://api.ecr-public.us-east-1.amazonaws.com".to_string()),
            host,
            region: "us-east-1".to_string(),
            api: Api::Public,
        });
    }
    let bad = || {
        format!(
            "{:?} is not an ECR registry host (<account>.dkr.ecr.<region>.amazonaws.com or public.ecr.aws)",
            shown(item)
        )
    };
    let region = crate::names::aws::ecr_registry_region(&host)
        .ok_or_else(bad)?
        .to_string();
    let fips = host.contains(".dkr.ecr-fips.") || host.contains(".dkr-ecr-fips.");
    let endpoint = override_for("AWS_ENDPOINT_URL_ECR")?.unwrap_or_else(|| {
        if fips {
            format!("https://ecr-fips.{region}.amazonaws.com")
        } else {
            default_endpoint("api.ecr", &region)
        }
    });
    Ok(Registry {
        host,
        region,
        api: Api::Private,
        endpoint,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::tests::{config, error_name};

    #[test]
    fn registries_by_region_and_kind() {
        let c = config(&[(
            "ECR_REGISTRIES",
            "111111111111.dkr.ecr.eu-west-1.amazonaws.com, https://222222222222.dkr.ecr-fips.us-east-1.amazonaws.com/,\
             333333333333.dkr.ecr.cn-north-1.amazonaws.com.cn,public.ecr.aws,111111111111.dkr.ecr.eu-west-1.amazonaws.com",
        )])
        .expect("valid");
        let r: Vec<(&str, &str, &str)> = c
            .registries
            .iter()
            .map(|r| (r.host.as_str(), r.region.as_str(), r.endpoint.as_str()))
            .collect();
        assert_eq!(
            r,
            vec![
                (
                    "111111111111.dkr.ecr.eu-west-1.amazonaws.com",
                    "eu-west-1",
                    "https://api.ecr.eu-west-1.amazonaws.com"
                ),
                (
                    "222222222222.dkr.ecr-fips.us-east-1.amazonaws.com",
                    "us-east-1",
                    "https://ecr-fips.us-east-1.amazonaws.com"
                ),
                (
                    "333333333333.dkr.ecr.cn-north-1.amazonaws.com.cn",
                    "cn-north-1",
                    "https://api.ecr.cn-north-1.amazonaws.com.cn"
                ),
                (
                    "public.ecr.aws",
                    "us-east-1",
                    "https://api.ecr-public.us-east-1.amazonaws.com"
                ),
            ]
        );
        assert_eq!(c.registries[3].api, super::Api::Public);
        assert_eq!(
            error_name(&[("ECR_REGISTRIES", "docker.io")]),
            "ECR_REGISTRIES"
        );
        assert_eq!(
            error_name(&[("ECR_REGISTRIES", "12345.dkr.ecr.eu-west-1.amazonaws.com")]),
            "ECR_REGISTRIES"
        );
        let local = config(&[
            (
                "ECR_REGISTRIES",
                "111111111111.dkr.ecr.eu-west-1.amazonaws.com",
            ),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ])
        .expect("valid");
        assert_eq!(local.registries[0].endpoint, "http://127.0.0.1:5000");
    }
}
