//! STS (AWS Query protocol, `Version=2011-06-15`, XML answers): `AssumeRole`, SigV4-signed
//! with service name `sts`, and `AssumeRoleWithWebIdentity`, unsigned (the web identity token is
//! the proof). Both yield temporary [`Credentials`] read by [`parse_credentials`].

use std::time::SystemTime;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use ureq::Agent;

use super::answer::{Cap, receive};
use super::error::{AwsError, AwsErrorKind};
use super::keys::Credentials;
use super::sign::{Unsigned, signature_headers};
use super::xml;
use crate::sensitive::Sensitive;

const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
const VERSION: &str = "2011-06-15";

/// What `AssumeRole` needs besides the caller's credentials.
#[derive(Debug, Clone, Copy)]
pub struct AssumeRole<'a> {
    /// The role to assume.
    pub role_arn: &'a str,
    /// The session name (shows in CloudTrail).
    pub session_name: &'a str,
    /// The external id the role's trust policy may require.
    pub external_id: Option<&'a str>,
}

/// A client for one STS endpoint.
#[derive(Clone)]
pub struct StsClient {
    agent: Agent,
    endpoint: String,
    region: String,
}

impl StsClient {
    /// A client for `endpoint` (e.g. `https://sts.eu-west-1.amazonaws.com`) signing for `region`.
    pub fn new(agent: Agent, endpoint: &str, region: &str) -> Self {
        StsClient {
            agent,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            region: region.to_string(),
        }
    }

    /// `AssumeRole` signed with `caller`; the answer's credentials carry `source`.
    pub fn assume_role(
        &self,
        caller: &Credentials,
        request: &AssumeRole<'_>,
        source: &'static str,
    ) -> Result<Credentials, AwsError> {
        const OPERATION: &str = "STS AssumeRole";
        let mut params = vec![
            ("Action", "AssumeRole"),
            ("Version", VERSION),
            ("RoleArn", request.role_arn),
            ("RoleSessionName", request.session_name),
        ];
        if let Some(id) = request.external_id {
            params.push(("ExternalId", id));
        }
        let body = form_encode(&params);
        let url = format!("{}/", self.endpoint);
        let headers = [("content-type", CONTENT_TYPE)];
        let signed = signature_headers(
            &Unsigned {
                method: "POST",
                url: &url,
                headers: &headers,
                body: body.as_bytes(),
            },
            caller,
            &self.region,
            "sts",
            SystemTime::now(),
        )
        .map_err(|e| AwsError::new(OPERATION, AwsErrorKind::Credentials(e)))?;
        log::trace!(
            "POST {url} (STS AssumeRole {}) with key id {}",
            request.role_arn,
            caller.access_key_id
        );
        let mut call = self.agent.post(&url).header("content-type", CONTENT_TYPE);
        for (name, value) in &signed {
            call = call.header(name.as_str(), value.as_str());
        }
        let text =
            receive(OPERATION, Cap::Sts, || call.send(body.as_str()))?.into_success(OPERATION)?;
        parse_credentials(&text, source)
            .map_err(|e| AwsError::new(OPERATION, AwsErrorKind::Decode(e)))
    }

    /// `AssumeRoleWithWebIdentity`, unsigned; the answer's credentials carry `source`.
    pub fn assume_role_with_web_identity(
        &self,
        role_arn: &str,
        session_name: &str,
        token: &Sensitive,
        source: &'static str,
    ) -> Result<Credentials, AwsError> {
        const OPERATION: &str = "STS AssumeRoleWithWebIdentity";
        let body = form_encode(&[
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", VERSION),
            ("RoleArn", role_arn),
            ("RoleSessionName", session_name),
            ("WebIdentityToken", token.expose()),
        ]);
        // The body holds the token: only the role is logged.
        let url = format!("{}/", self.endpoint);
        log::trace!("POST {url} (STS AssumeRoleWithWebIdentity {role_arn})");
        let call = self.agent.post(&url).header("content-type", CONTENT_TYPE);
        let text =
            receive(OPERATION, Cap::Sts, || call.send(body.as_str()))?.into_success(OPERATION)?;
        parse_credentials(&text, source)
            .map_err(|e| AwsError::new(OPERATION, AwsErrorKind::Decode(e)))
    }
}

/// The `<Credentials>` of an `AssumeRole*Response`. Secrets are wrapped at once.
pub fn parse_credentials(text: &str, source: &'static str) -> Result<Credentials, String> {
    let block = xml::element(text, "Credentials").ok_or("no <Credentials> in the answer")?;
    let field = |tag: &str| {
        xml::text(block, tag)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("<Credentials> has no <{tag}>"))
    };
    let access_key_id = field("AccessKeyId")?;
    let secret_access_key = Sensitive::new(field("SecretAccessKey")?);
    let session_token = Sensitive::new(field("SessionToken")?);
    let expiration = field("Expiration")?;
    let expires_at = parse_expiration(&expiration)?;
    Credentials {
        access_key_id,
        secret_access_key,
        session_token: Some(session_token),
        expires_at: Some(expires_at),
        source,
    }
    .check_shape()
}

/// An RFC 3339 time such as `2026-11-29T14:35:04Z` (fractions and offsets allowed).
pub fn parse_expiration(value: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|_| {
        format!(
            "Expiration \"{}\" is not an RFC 3339 time",
            super::error::excerpt(value, 64)
        )
    })
}

/// `application/x-www-form-urlencoded` with RFC 3986 escaping (what SigV4 and STS expect).
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    let escape = |s: &str| {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOTO_ANSWER: &str = "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIARZPUZDIKPSHBOWTO</AccessKeyId><SecretAccessKey>qqXh2RNj8KM4xmTOFdTMWVzfI17LVrObRq2SPvpi</SecretAccessKey><SessionToken>FQoGZXIvYXdzEBYaDxgCQG1ln3M/grvS5zWHqbC2eUqx+PgVDeHLjnIKvSz=</SessionToken><Expiration>2026-11-29T14:35:04.328361Z</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>ARO123EXAMPLE123:s</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/x/s</Arn></AssumedRoleUser><PackedPolicySize>6</PackedPolicySize></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>MTBI</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>";

    #[test]
    fn reads_moto_s_answer() {
        let c = parse_credentials(MOTO_ANSWER, "web identity").expect("parsed");
        assert_eq!(c.access_key_id, "ASIARZPUZDIKPSHBOWTO");
        assert_eq!(
            c.secret_access_key.expose(),
            "qqXh2RNj8KM4xmTOFdTMWVzfI17LVrObRq2SPvpi"
        );
        assert_eq!(
            c.session_token.as_ref().map(Sensitive::expose),
            Some("FQoGZXIvYXdzEBYaDxgCQG1ln3M/grvS5zWHqbC2eUqx+PgVDeHLjnIKvSz=")
        );
        assert_eq!(
            c.expires_at.map(OffsetDateTime::unix_timestamp),
            Some(1_795_962_904)
        );
        assert_eq!(c.source, "web identity");
        assert!(!format!("{c:?}").contains("qqXh2RNj8KM4"));
        assert_eq!(
            crate::sensitive::scrub("x qqXh2RNj8KM4xmTOFdTMWVzfI17LVrObRq2SPvpi y"),
            "x *** y",
            "the secret is registered with the log mask"
        );
    }

    #[test]
    fn incomplete_answers_are_refused() {
        assert!(
            parse_credentials("<AssumeRoleResponse/>", "x")
                .expect_err("none")
                .contains("<Credentials>")
        );
        let no_token = MOTO_ANSWER
            .replace("<SessionToken>", "<X>")
            .replace("</SessionToken>", "</X>");
        assert!(
            parse_credentials(&no_token, "x")
                .expect_err("no token")
                .contains("SessionToken")
        );
        let bad_time = MOTO_ANSWER.replace("2026-11-29T14:35:04.328361Z", "tomorrow");
        let e = parse_credentials(&bad_time, "x").expect_err("bad time");
        assert!(e.contains("RFC 3339"), "{e}");
    }

    #[test]
    fn expirations_with_offsets() {
        assert_eq!(
            parse_expiration("2026-11-29T15:35:04+01:00")
                .expect("offset")
                .unix_timestamp(),
            parse_expiration("2026-11-29T14:35:04Z")
                .expect("zulu")
                .unix_timestamp()
        );
    }

    #[test]
    fn form_bodies_escape_everything_but_unreserved() {
        assert_eq!(
            form_encode(&[
                ("RoleArn", "arn:aws:iam::123456789012:role/a b"),
                ("X", "a+b=c&d~e")
            ]),
            "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fa%20b&X=a%2Bb%3Dc%26d~e"
        );
    }
}
