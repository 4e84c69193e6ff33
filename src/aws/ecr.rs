//! ECR's `GetAuthorizationToken` (AWS JSON 1.1 protocol, SigV4 service `ecr`): one call gives a
//! token that works for every registry the principal can read in that region for 12 hours.
//!
//! Every answer is checked before anything can be written with it ([`check`]): a printable
//! non-empty user and password, a `proxyEndpoint` of ECR's own form, and an expiry that makes
//! sense. The expiry rule, with `d` = expiresAt minus the time the answer arrived:
//! - `5 min <= d <= 24 h`: used as is (ECR's tokens last 12 h; 24 h leaves room for clock skew);
//! - `-24 h <= d < 5 min`: **refused** as expired (or about to be): a real, stale token, such as
//!   one replayed by a cache, or a clock more than 12 h off. Nothing is written;
//! - `d < -24 h` or `d > 24 h`: **implausible** (no ECR token is issued years expired or valid
//!   for days: a fixed test value such as moto's 2015, or a broken peer's 9999-12-31). Taken as
//!   fetch time + 12 h, ECR's real lifetime, with a warning, so the refresh schedule, the
//!   failure backoff and the expiry alerts stay sane.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use time::OffsetDateTime;
use ureq::Agent;

use super::answer::{Cap, receive};
use super::error::{AwsError, AwsErrorKind};
use super::keys::Credentials;
use super::sign::{Unsigned, signature_headers};
pub use crate::config::Api;
use crate::sensitive::Sensitive;

impl Api {
    fn operation(self) -> &'static str {
        match self {
            Api::Private => "ECR GetAuthorizationToken",
            Api::Public => "ECR Public GetAuthorizationToken",
        }
    }

    fn target(self) -> &'static str {
        match self {
            Api::Private => "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken",
            Api::Public => "SpencerFrontendService.GetAuthorizationToken",
        }
    }

    fn service(self) -> &'static str {
        match self {
            Api::Private => "ecr",
            Api::Public => "ecr-public",
        }
    }
}

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// Attempts of one call when the failure is a 5xx or no answer (throttling waits for the
/// daemon's backoff instead: hammering a throttled API makes it worse).
const MAX_ATTEMPTS: u32 = 3;
/// The first pause between attempts; it doubles.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);
/// ECR's token lifetime: what an implausible expiry is replaced with, from the fetch time.
pub const TOKEN_LIFETIME: time::Duration = time::Duration::hours(12);
/// How far from the fetch time an expiry is believed, either way.
pub const PLAUSIBLE_WINDOW: time::Duration = time::Duration::hours(24);
/// A token with less validity than this left when it arrives is refused as expired.
pub const MIN_VALIDITY: time::Duration = time::Duration::minutes(5);
/// ECR Public's registry host (its answer names none).
const PUBLIC_HOST: &str = "public.ecr.aws";

/// What a registry login needs, from one `authorizationData` entry.
#[derive(Debug, Clone)]
pub struct AuthorizationData {
    /// The user name (always `AWS` in practice).
    pub username: String,
    /// The password (the part after the first colon of the decoded token).
    pub password: Sensitive,
    /// The registry URL, e.g. `https://123456789012.dkr.ecr.eu-west-1.amazonaws.com`
    /// (`https://public.ecr.aws` for ECR Public, whose answer has none).
    pub proxy_endpoint: String,
    /// When the token expires.
    pub expires_at: OffsetDateTime,
}

/// A client for one region's ECR (or ECR Public) endpoint.
pub struct EcrClient {
    agent: Agent,
    endpoint: String,
    region: String,
    api: Api,
    allowed_hosts: Vec<String>,
}

impl EcrClient {
    /// A client for the private-registry API at `endpoint` (without trailing slash), signing
    /// for `region`.
    pub fn new(agent: Agent, endpoint: &str, region: &str) -> Self {
        Self::for_api(agent, endpoint, region, Api::Private)
    }

    /// A client for either API.
    pub fn for_api(agent: Agent, endpoint: &str, region: &str, api: Api) -> Self {
        EcrClient {
            agent,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            region: region.to_string(),
            api,
            allowed_hosts: Vec::new(),
        }
    }

    /// Also accepts these registry hosts (`ECR_REGISTRIES`) as an answer's `proxyEndpoint`.
    pub fn allowing_hosts(mut self, hosts: Vec<String>) -> Self {
        self.allowed_hosts = hosts;
        self
    }

    /// Calls GetAuthorizationToken, retrying a 5xx or a lost connection a bounded number of times.
    pub fn get_authorization_token(
        &self,
        credentials: &Credentials,
    ) -> Result<AuthorizationData, AwsError> {
        let mut attempt = 1;
        loop {
            match self.call_once(credentials) {
                Err(e) if attempt < MAX_ATTEMPTS && is_retryable(&e) => {
                    let pause = RETRY_PAUSE * 2u32.pow(attempt - 1);
                    log::warn!("{e}; retrying in {:.1} s", pause.as_secs_f64());
                    if crate::shutdown::sleep(pause) {
                        return Err(e);
                    }
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn call_once(&self, credentials: &Credentials) -> Result<AuthorizationData, AwsError> {
        let operation = self.api.operation();
        let url = format!("{}/", self.endpoint);
        let body = b"{}";
        let headers = [
            ("content-type", CONTENT_TYPE),
            ("x-amz-target", self.api.target()),
        ];
        let signed = signature_headers(
            &Unsigned {
                method: "POST",
                url: &url,
                headers: &headers,
                body,
            },
            credentials,
            &self.region,
            self.api.service(),
            SystemTime::now(),
        )
        .map_err(|e| AwsError::new(operation, AwsErrorKind::Credentials(e)))?;

        let mut request = self.agent.post(&url);
        for (name, value) in headers.iter() {
            request = request.header(*name, *value);
        }
        for (name, value) in &signed {
            request = request.header(name.as_str(), value.as_str());
        }
        log::trace!(
            "POST {url} ({}) for {} with key id {}",
            self.api.target(),
            self.region,
            credentials.access_key_id
        );
        let text =
            receive(operation, Cap::Ecr, || request.send(&body[..]))?.into_success(operation)?;
        let fetched_at = OffsetDateTime::now_utc();
        let decode = |e: String| AwsError::new(operation, AwsErrorKind::Decode(e));
        let data = parse_response(&text).map_err(decode)?;
        let rules = Rules {
            api: self.api,
            allowed_hosts: &self.allowed_hosts,
            loopback_endpoint: is_loopback_url(&self.endpoint),
        };
        let (data, warning) = check(data, fetched_at, &rules).map_err(decode)?;
        if let Some(warning) = warning {
            log::warn!("{operation}: {warning}");
        }
        Ok(data)
    }
}

/// A 5xx or no answer: worth another immediate try. Throttling is not (the daemon backs off).
fn is_retryable(e: &AwsError) -> bool {
    match &e.kind {
        AwsErrorKind::Transport(_) => true,
        AwsErrorKind::Service { status, .. } => *status >= 500,
        _ => false,
    }
}

/// Reads the first `authorizationData` entry of a GetAuthorizationToken answer.
pub fn parse_response(text: &str) -> Result<AuthorizationData, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("body is not JSON: {e}"))?;
    // Private ECR answers a list; ECR Public a single object.
    let data = match v.get("authorizationData") {
        Some(Value::Array(list)) => list.first(),
        Some(object @ Value::Object(_)) => Some(object),
        _ => None,
    }
    .ok_or("no authorizationData in the answer")?;
    let token = data
        .get("authorizationToken")
        .and_then(Value::as_str)
        .ok_or("authorizationData has no authorizationToken")?;
    let decoded = STANDARD
        .decode(token.trim())
        .map_err(|_| "authorizationToken is not base64".to_string())?;
    let decoded =
        String::from_utf8(decoded).map_err(|_| "authorizationToken is not UTF-8".to_string())?;
    // Split at the FIRST colon only: the password may contain colons.
    let (username, password) = decoded
        .split_once(':')
        .ok_or("authorizationToken is not user:password")?;
    if username.is_empty() || password.is_empty() {
        return Err("authorizationToken has an empty user or password".to_string());
    }
    if !printable(username) {
        return Err("the token's user name holds spaces or control characters".to_string());
    }
    if !printable(password) {
        return Err("the token's password holds spaces or control characters".to_string());
    }
    let password = Sensitive::new(password);
    let proxy_endpoint = match data.get("proxyEndpoint") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err("proxyEndpoint is not a string".to_string()),
    };
    let expires_at = data
        .get("expiresAt")
        .and_then(Value::as_f64)
        .ok_or("authorizationData has no numeric expiresAt")?;
    // Far beyond any real date either way (year 5138): the expiry check below deals with it.
    let seconds = expires_at.clamp(-1e11, 1e11);
    let expires_at = OffsetDateTime::from_unix_timestamp_nanos((seconds * 1e9) as i128)
        .map_err(|_| format!("expiresAt {expires_at} is out of range"))?;
    Ok(AuthorizationData {
        username: username.to_string(),
        password,
        proxy_endpoint,
        expires_at,
    })
}

/// Printable ASCII, no space: what a docker login's user and password may hold.
fn printable(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether a URL's host is a loopback address (`localhost`, 127.0.0.0/8, `[::1]`).
fn is_loopback_url(url: &str) -> bool {
    url.parse::<ureq::http::Uri>()
        .ok()
        .and_then(|u| u.host().map(is_loopback_host))
        .unwrap_or(false)
}

fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// What an answer is checked against.
pub struct Rules<'a> {
    /// The API asked (ECR Public's answer names no endpoint).
    pub api: Api,
    /// Registry hosts listed in `ECR_REGISTRIES`, accepted whatever their form.
    pub allowed_hosts: &'a [String],
    /// The ECR endpoint itself is on this machine (a test or local setup): a registry on a
    /// loopback address (with a port) is then accepted too.
    pub loopback_endpoint: bool,
}

/// Checks an answer before anything is written with it: the `proxyEndpoint` (made
/// `https://<host>`) and the expiry, by the rule in this module's doc. The second value is a
/// warning to log (an implausible expiry replaced).
pub fn check(
    mut data: AuthorizationData,
    fetched_at: OffsetDateTime,
    rules: &Rules<'_>,
) -> Result<(AuthorizationData, Option<String>), String> {
    data.proxy_endpoint = format!("https://{}", registry_host(&data.proxy_endpoint, rules)?);
    let rfc3339 = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| t.unix_timestamp().to_string())
    };
    let left = data.expires_at - fetched_at;
    if left < -PLAUSIBLE_WINDOW || left > PLAUSIBLE_WINDOW {
        let assumed = fetched_at.replace_nanosecond(0).unwrap_or(fetched_at) + TOKEN_LIFETIME;
        let warning = format!(
            "expiresAt {} is implausible (more than 24 h from the fetch time {}: a test endpoint, a broken peer or a clock far off); taking ECR's 12 h lifetime, {}",
            rfc3339(data.expires_at),
            rfc3339(fetched_at),
            rfc3339(assumed)
        );
        data.expires_at = assumed;
        return Ok((data, Some(warning)));
    }
    if left < MIN_VALIDITY {
        return Err(format!(
            "the token is already expired or about to be (expiresAt {}, fetched at {}); nothing is written with it (if this machine's clock is wrong, fix it)",
            rfc3339(data.expires_at),
            rfc3339(fetched_at)
        ));
    }
    Ok((data, None))
}

/// The registry host an answer's `proxyEndpoint` names, if it is acceptable: `https://` and a
/// host of ECR's own form (private, FIPS, dual-stack, every partition), `public.ecr.aws` for
/// ECR Public, a host listed in `ECR_REGISTRIES`, or a loopback host from a loopback endpoint.
/// No user info, no path, no query, no fragment.
fn registry_host(endpoint: &str, rules: &Rules<'_>) -> Result<String, String> {
    let shown = super::error::excerpt(endpoint, 120);
    if endpoint.is_empty() {
        return match rules.api {
            Api::Public => Ok(PUBLIC_HOST.to_string()),
            Api::Private => Err("the answer has no proxyEndpoint".to_string()),
        };
    }
    let refused = |why: &str| format!("proxyEndpoint \"{shown}\" refused: {why}");
    if endpoint.contains(['@', '#', '?']) || endpoint.chars().any(|c| c.is_whitespace()) {
        return Err(refused("not a plain https://host URL"));
    }
    let uri: ureq::http::Uri = endpoint.parse().map_err(|_| refused("not a URL"))?;
    if uri.scheme_str() != Some("https") {
        return Err(refused("not https"));
    }
    if !matches!(uri.path(), "" | "/") {
        return Err(refused("has a path"));
    }
    let authority = uri.authority().ok_or_else(|| refused("no host"))?;
    let host = authority.host().to_ascii_lowercase();
    if host.is_empty() {
        return Err(refused("no host"));
    }
    let with_port = authority.as_str().to_ascii_lowercase();
    if rules.allowed_hosts.contains(&with_port) {
        return Ok(with_port);
    }
    if rules.loopback_endpoint && is_loopback_host(&host) {
        return Ok(with_port);
    }
    if authority.port().is_some() {
        return Err(refused("has a port"));
    }
    let own_form = match rules.api {
        Api::Private => crate::names::aws::ecr_registry_region(&host).is_some(),
        Api::Public => host == PUBLIC_HOST,
    };
    if own_form {
        Ok(host)
    } else {
        Err(refused(
            "not an ECR registry host (<account>.dkr.ecr.<region>.amazonaws.com) nor one listed in ECR_REGISTRIES",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(token_plain: &str) -> String {
        format!(
            r#"{{"authorizationData":[{{"authorizationToken":"{}","expiresAt":1.7e9,"proxyEndpoint":"https://1.dkr.ecr.eu-west-1.amazonaws.com"}}]}}"#,
            STANDARD.encode(token_plain)
        )
    }

    #[test]
    fn splits_at_the_first_colon_only() {
        let d = parse_response(&answer("AWS:pass:with:colons")).expect("parsed");
        assert_eq!(d.username, "AWS");
        assert_eq!(d.password.expose(), "pass:with:colons");
        assert_eq!(
            d.proxy_endpoint,
            "https://1.dkr.ecr.eu-west-1.amazonaws.com"
        );
        assert_eq!(d.expires_at.unix_timestamp(), 1_700_000_000);
    }

    #[test]
    fn long_passwords_are_kept_whole() {
        // Varied characters, so that no other test's text of one repeated letter is masked.
        let long: String = (0..5000u32)
            .map(|i| char::from(b'a' + u8::try_from(i * 7 % 26).unwrap_or(0)))
            .collect();
        let d = parse_response(&answer(&format!("AWS:{long}"))).expect("parsed");
        assert_eq!(d.password.expose().len(), 5000);
    }

    #[test]
    fn ecr_public_answers_one_object_without_endpoint() {
        let text = format!(
            r#"{{"authorizationData":{{"authorizationToken":"{}","expiresAt":1.7e9}}}}"#,
            STANDARD.encode("AWS:public-password")
        );
        let d = parse_response(&text).expect("parsed");
        assert_eq!(d.password.expose(), "public-password");
        let fetched = d.expires_at - time::Duration::hours(12);
        let (d, _) = check(d, fetched, &rules(Api::Public)).expect("checked");
        assert_eq!(d.proxy_endpoint, "https://public.ecr.aws");
    }

    fn rules(api: Api) -> Rules<'static> {
        Rules {
            api,
            allowed_hosts: &[],
            loopback_endpoint: false,
        }
    }

    fn data(endpoint: &str, expires_at: OffsetDateTime) -> AuthorizationData {
        AuthorizationData {
            username: "AWS".into(),
            password: Sensitive::new("a-password-for-the-checks"),
            proxy_endpoint: endpoint.into(),
            expires_at,
        }
    }

    const NOW: OffsetDateTime = time::macros::datetime!(2026-06-01 12:00 UTC);
    const GOOD: &str = "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com";

    #[test]
    fn registry_hosts_of_ecr_form_or_listed_only() {
        let in_12h = NOW + time::Duration::hours(12);
        let ok = |endpoint: &str, rules: &Rules<'_>| {
            check(data(endpoint, in_12h), NOW, rules).map(|(d, _)| d.proxy_endpoint)
        };
        assert_eq!(ok(GOOD, &rules(Api::Private)).as_deref(), Ok(GOOD));
        assert_eq!(
            ok(&format!("{GOOD}/"), &rules(Api::Private)).as_deref(),
            Ok(GOOD)
        );
        for bad in [
            "https://evil.example.com/x",
            "https://evil.example.com",
            "https://",
            "",
            "http://123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/x",
            "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com:444",
            "https://u:p@123456789012.dkr.ecr.eu-west-1.amazonaws.com",
            "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com#x",
            "https://127.0.0.1:5000",
        ] {
            assert!(ok(bad, &rules(Api::Private)).is_err(), "{bad:?}");
        }
        let listed = ["registry.internal:5000".to_string()];
        let with_list = Rules {
            api: Api::Private,
            allowed_hosts: &listed,
            loopback_endpoint: false,
        };
        assert_eq!(
            ok("https://registry.internal:5000", &with_list).as_deref(),
            Ok("https://registry.internal:5000")
        );
        let local = Rules {
            api: Api::Private,
            allowed_hosts: &[],
            loopback_endpoint: true,
        };
        assert_eq!(
            ok("https://127.0.0.1:5000", &local).as_deref(),
            Ok("https://127.0.0.1:5000")
        );
        assert!(ok("https://evil.example.com", &local).is_err());
        // ECR Public: its one host, and no other.
        assert_eq!(
            ok("https://public.ecr.aws", &rules(Api::Public)).as_deref(),
            Ok("https://public.ecr.aws")
        );
        for bad in ["https://evil.example.com", GOOD] {
            assert!(ok(bad, &rules(Api::Public)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_a_loopback_endpoint_allows_loopback_registries() {
        for url in [
            "http://127.0.0.1:4566",
            "http://127.8.9.10",
            "http://localhost:5000/",
            "http://LOCALHOST",
            "http://[::1]:4566",
        ] {
            assert!(is_loopback_url(url), "{url}");
        }
        for url in [
            "https://api.ecr.eu-west-1.amazonaws.com",
            "http://127.example.com",
            "http://localhost.example.com",
            "http://10.0.0.1:4566",
            "http://[::2]",
            "not a url",
            "",
        ] {
            assert!(!is_loopback_url(url), "{url}");
        }
    }

    #[test]
    fn expired_tokens_are_refused_and_implausible_expiries_clamped() {
        let at = |d: time::Duration| check(data(GOOD, NOW + d), NOW, &rules(Api::Private));
        // In the window: kept as answered.
        for d in [
            time::Duration::hours(12),
            time::Duration::minutes(5), // the README: 5 min to 24 h is used as is
            time::Duration::hours(24),
        ] {
            let (checked, warning) = at(d).expect("plausible");
            assert_eq!(checked.expires_at, NOW + d);
            assert!(warning.is_none());
        }
        // Expired, or about to be: refused.
        for d in [
            time::Duration::ZERO,
            time::Duration::minutes(5) - time::Duration::SECOND,
            -time::Duration::hours(1),
            -time::Duration::hours(24),
        ] {
            let e = at(d).expect_err("expired");
            assert!(e.contains("already expired"), "{e}");
        }
        // Implausible either way (moto's 2015, a broken peer's 9999-12-31): fetch time + 12 h.
        for expiry in [
            time::macros::datetime!(2015-01-01 00:00 UTC),
            time::macros::datetime!(9999-12-31 00:00 UTC),
            NOW + time::Duration::hours(25),
            NOW - time::Duration::hours(25),
        ] {
            let (checked, warning) =
                check(data(GOOD, expiry), NOW, &rules(Api::Private)).expect("clamped");
            assert_eq!(checked.expires_at, NOW + time::Duration::hours(12));
            assert!(warning.expect("a warning").contains("implausible"));
            // Whole seconds, as ECR's own expiries and the annotation written from them.
            let (late, _) = check(
                data(GOOD, expiry),
                NOW + time::Duration::milliseconds(700),
                &rules(Api::Private),
            )
            .expect("clamped");
            assert_eq!(late.expires_at, NOW + time::Duration::hours(12));
        }
    }

    #[test]
    fn unprintable_passwords_and_absurd_numbers() {
        for bad in [
            "AWS:   ",
            "AWS:pass word",
            "AWS:pa\u{7}ss",
            "AWS:pass\n",
            " :x",
        ] {
            let text = format!(
                r#"{{"authorizationData":[{{"authorizationToken":"{}","expiresAt":1.7e9,"proxyEndpoint":"{GOOD}"}}]}}"#,
                STANDARD.encode(bad)
            );
            assert!(parse_response(&text).is_err(), "{bad:?}");
        }
        let huge = format!(
            r#"{{"authorizationData":[{{"authorizationToken":"{}","expiresAt":1e300,"proxyEndpoint":"{GOOD}"}}]}}"#,
            STANDARD.encode("AWS:pw-123456")
        );
        let d = parse_response(&huge).expect("parsed");
        let (d, w) = check(d, NOW, &rules(Api::Private)).expect("clamped");
        assert_eq!(d.expires_at, NOW + time::Duration::hours(12));
        assert!(w.is_some());
    }

    #[test]
    fn malformed_answers_are_refused() {
        assert!(
            parse_response("{}")
                .expect_err("no data")
                .contains("authorizationData")
        );
        assert!(
            parse_response(&answer("no-colon"))
                .expect_err("no colon")
                .contains("user:password")
        );
        assert!(
            parse_response(&answer("AWS:"))
                .expect_err("empty")
                .contains("empty")
        );
        assert!(parse_response(r#"{"authorizationData":[{"authorizationToken":"%%%","expiresAt":1,"proxyEndpoint":"x"}]}"#)
            .expect_err("bad b64")
            .contains("base64"));
    }
}
