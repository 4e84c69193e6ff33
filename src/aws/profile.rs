//! The shared AWS files (`~/.aws/credentials`, `~/.aws/config`): parsing them as the SDKs do,
//! and turning a profile into a [`Plan`] (base credentials, then the roles to assume in turn)
//! without any I/O beyond reading the two files. The chain in [`super::credentials`] runs the
//! plan.
//!
//! What the SDKs accept and this reads: static keys (`aws_access_key_id`,
//! `aws_secret_access_key`, `aws_session_token`); `role_arn` with `source_profile` (chains of any
//! length, a profile naming itself for its own keys) or `credential_source` (`Environment`,
//! `Ec2InstanceMetadata`, `EcsContainer`), plus `external_id` and `role_session_name`; and
//! `web_identity_token_file` with `role_arn`. `credential_process` and SSO profiles are refused
//! with a message saying why: the daemon runs in a scratch image with no programs to start and
//! no browser login.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::sensitive::Sensitive;

/// Profile name -> property name (lower case) -> value.
type Profiles = BTreeMap<String, BTreeMap<String, String>>;

/// The profiles of both files, the credentials file's properties winning over the config file's.
#[derive(Debug, Default)]
pub struct ProfileSet {
    profiles: Profiles,
    /// The files that exist and were read, for messages.
    pub files: Vec<PathBuf>,
}

impl ProfileSet {
    /// Reads whichever of the two files exists. A missing file is not an error; an unreadable
    /// one is.
    pub fn load(
        credentials_file: Option<&Path>,
        config_file: Option<&Path>,
    ) -> Result<Self, String> {
        let mut set = ProfileSet::default();
        let read = |path: &Path| -> Result<Option<String>, String> {
            match crate::files::read_small_file(path, crate::files::SHARED_FILE_CAP) {
                Ok(text) => Ok(Some(text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("cannot read {}: {e}", path.display())),
            }
        };
        if let Some(path) = config_file
            && let Some(text) = read(path)?
        {
            set.merge(parse(&text, FileKind::Config));
            set.files.push(path.to_path_buf());
        }
        if let Some(path) = credentials_file
            && let Some(text) = read(path)?
        {
            set.merge(parse(&text, FileKind::Credentials));
            set.files.push(path.to_path_buf());
        }
        Ok(set)
    }

    /// A set made of the two files' texts (for tests).
    pub fn from_texts(credentials: &str, config: &str) -> Self {
        let mut set = ProfileSet::default();
        set.merge(parse(config, FileKind::Config));
        set.merge(parse(credentials, FileKind::Credentials));
        set
    }

    fn merge(&mut self, other: Profiles) {
        for (name, properties) in other {
            self.profiles.entry(name).or_default().extend(properties);
        }
    }

    /// Whether the profile is in either file.
    pub fn contains(&self, name: &str) -> bool {
        self.profiles.contains_key(name)
    }

    /// The files read, for messages: `a and b`, or `no shared files`.
    pub fn describe_files(&self) -> String {
        if self.files.is_empty() {
            return "no shared files".to_string();
        }
        self.files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" and ")
    }
}

/// Which of the two files: they name sections differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    /// `[name]`.
    Credentials,
    /// `[default]` and `[profile name]`; other sections (`[sso-session x]`, `[services x]`) are
    /// not profiles.
    Config,
}

/// Parses one file. Comment lines start with `#` or `;`; indented lines after a property are
/// its sub-properties (`s3 =\n  max_concurrent_requests = 10`) and are skipped; property names
/// are case-insensitive. Values stay plain here; the keys of the profile actually used become
/// [`Sensitive`] (and so masked in logs) when it is resolved.
fn parse(text: &str, kind: FileKind) -> Profiles {
    let mut profiles = Profiles::new();
    let mut current: Option<String> = None;
    let mut after_property = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if after_property && line.starts_with([' ', '\t']) {
            continue;
        }
        if let Some(header) = trimmed.strip_prefix('[') {
            after_property = false;
            current = header
                .split_once(']')
                .and_then(|(name, _comment)| section_profile(name.trim(), kind));
            if let Some(name) = &current {
                profiles.entry(name.clone()).or_default();
            }
            continue;
        }
        let (Some(profile), Some((key, value))) = (&current, trimmed.split_once('=')) else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim().to_string();
        after_property = true;
        profiles
            .entry(profile.clone())
            .or_default()
            .insert(key, value);
    }
    profiles
}

/// The profile a section header names, if it names one.
fn section_profile(header: &str, kind: FileKind) -> Option<String> {
    match kind {
        FileKind::Credentials => Some(header.to_string()).filter(|h| !h.is_empty()),
        FileKind::Config if header == "default" => Some(header.to_string()),
        FileKind::Config => header
            .strip_prefix("profile")
            .filter(|rest| rest.starts_with([' ', '\t']))
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_string),
    }
}

/// Where a plan's first credentials come from.
#[derive(Debug, Clone)]
pub enum Base {
    /// Keys written in a profile.
    Static {
        /// The profile holding them.
        profile: String,
        /// `aws_access_key_id`.
        access_key_id: String,
        /// `aws_secret_access_key`.
        secret_access_key: Sensitive,
        /// `aws_session_token`.
        session_token: Option<Sensitive>,
    },
    /// `web_identity_token_file` + `role_arn`: AssumeRoleWithWebIdentity.
    WebIdentity {
        /// The profile naming them.
        profile: String,
        /// The token file, re-read on every call.
        token_file: PathBuf,
        /// The role.
        role_arn: String,
        /// `role_session_name`.
        session_name: Option<String>,
    },
    /// `credential_source = Environment`.
    Environment,
    /// `credential_source = Ec2InstanceMetadata`.
    InstanceMetadata,
    /// `credential_source = EcsContainer`.
    Container,
}

impl Base {
    /// A short description for logs (never a value).
    pub fn describe(&self) -> String {
        match self {
            Base::Static { profile, .. } => format!("static keys of profile `{profile}`"),
            Base::WebIdentity {
                profile, role_arn, ..
            } => format!("web_identity_token_file of profile `{profile}` for {role_arn}"),
            Base::Environment => "credential_source Environment".to_string(),
            Base::InstanceMetadata => "credential_source Ec2InstanceMetadata".to_string(),
            Base::Container => "credential_source EcsContainer".to_string(),
        }
    }
}

/// A role to assume, as a profile describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleStep {
    /// The profile with the `role_arn`.
    pub profile: String,
    /// `role_arn`.
    pub role_arn: String,
    /// `external_id`.
    pub external_id: Option<String>,
    /// `role_session_name`.
    pub session_name: Option<String>,
}

/// How to get a profile's credentials: the base, then each role in order (the selected
/// profile's role last).
#[derive(Debug, Clone)]
pub struct Plan {
    /// The first credentials.
    pub base: Base,
    /// Roles to assume in turn, each with the previous credentials.
    pub roles: Vec<RoleStep>,
}

impl Plan {
    /// A short description for logs: `role X (profile a) <- static keys of profile b`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .roles
            .iter()
            .rev()
            .map(|r| format!("role {} of profile `{}`", r.role_arn, r.profile))
            .collect();
        parts.push(self.base.describe());
        parts.join(" <- ")
    }
}

/// What a profile gives.
#[derive(Debug, Clone)]
pub enum Resolution {
    /// The profile holds no credential settings at all (only a region, say): the chain goes
    /// on to the next source, as the SDKs do.
    NoCredentials,
    /// The way to its credentials.
    Plan(Plan),
}

/// Works out how to get the credentials of profile `name`, following `source_profile` links.
/// Errors are misconfigurations: a missing or looping `source_profile`, a profile that needs
/// something this daemon cannot do (`credential_process`, SSO), half a key pair.
pub fn resolve(set: &ProfileSet, name: &str) -> Result<Resolution, String> {
    let mut roles: Vec<RoleStep> = Vec::new();
    let mut visited: Vec<String> = Vec::new();
    let mut current = name.to_string();
    loop {
        let Some(profile) = set.profiles.get(&current) else {
            let referrer = visited.last().map(String::as_str).unwrap_or_default();
            return Err(format!(
                "profile `{current}` (the source_profile of `{referrer}`) is not in {}",
                set.describe_files()
            ));
        };
        let get = |key: &str| {
            profile
                .get(key)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let chained = !visited.is_empty();
        // Further down a chain, a profile with keys ends it (even if it has a role_arn too).
        if chained && let Some(base) = static_keys(&current, profile)? {
            return Ok(Resolution::Plan(Plan { base, roles }));
        }
        let role_arn = get("role_arn");
        if let (Some(role_arn), None) = (role_arn, get("web_identity_token_file")) {
            roles.insert(
                0,
                RoleStep {
                    profile: current.clone(),
                    role_arn: role_arn.to_string(),
                    external_id: get("external_id").map(str::to_string),
                    session_name: get("role_session_name").map(str::to_string),
                },
            );
            match (get("source_profile"), get("credential_source")) {
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "profile `{current}` sets both source_profile and credential_source; keep one"
                    ));
                }
                (None, None) => {
                    return Err(format!(
                        "profile `{current}` has role_arn but neither source_profile nor credential_source"
                    ));
                }
                (None, Some(source)) => {
                    let base = match source {
                        "Environment" => Base::Environment,
                        "Ec2InstanceMetadata" => Base::InstanceMetadata,
                        "EcsContainer" => Base::Container,
                        other => {
                            return Err(format!(
                                "profile `{current}` has credential_source {other:?}; expected Environment, Ec2InstanceMetadata or EcsContainer"
                            ));
                        }
                    };
                    return Ok(Resolution::Plan(Plan { base, roles }));
                }
                (Some(source), None) if source == current => {
                    // A profile naming itself uses its own keys for its role.
                    let base = static_keys(&current, profile)?.ok_or_else(|| {
                        format!("profile `{current}` is its own source_profile but has no keys")
                    })?;
                    return Ok(Resolution::Plan(Plan { base, roles }));
                }
                (Some(source), None) => {
                    if visited.iter().any(|v| v == source) {
                        let mut path = visited.clone();
                        path.push(current.clone());
                        path.push(source.to_string());
                        return Err(format!("source_profile loop: {}", path.join(" -> ")));
                    }
                    visited.push(current.clone());
                    current = source.to_string();
                    continue;
                }
            }
        }
        // No role of its own: the profile must hold the base credentials.
        let base = base_credentials(&current, profile)?;
        return match base {
            Some(base) => Ok(Resolution::Plan(Plan { base, roles })),
            None if chained => Err(format!(
                "profile `{current}` (the source_profile of `{}`) holds no credentials",
                visited.last().map(String::as_str).unwrap_or_default()
            )),
            None => Ok(Resolution::NoCredentials),
        };
    }
}

/// The base credentials a profile holds by itself, in the SDKs' order: web identity, then the
/// kinds this daemon refuses (SSO, `credential_process`), then static keys.
fn base_credentials(
    name: &str,
    profile: &BTreeMap<String, String>,
) -> Result<Option<Base>, String> {
    let get = |key: &str| {
        profile
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    if let Some(file) = get("web_identity_token_file") {
        let role_arn = get("role_arn").ok_or_else(|| {
            format!("profile `{name}` has web_identity_token_file but no role_arn")
        })?;
        return Ok(Some(Base::WebIdentity {
            profile: name.to_string(),
            token_file: PathBuf::from(file),
            role_arn: role_arn.to_string(),
            session_name: get("role_session_name").map(str::to_string),
        }));
    }
    if get("sso_session").is_some()
        || get("sso_start_url").is_some()
        || get("sso_account_id").is_some()
    {
        return Err(format!(
            "profile `{name}` uses AWS IAM Identity Center (sso_*), which needs an interactive \
             login this daemon cannot do; use a role (web identity, Pod Identity) or static keys"
        ));
    }
    if get("credential_process").is_some() {
        return Err(format!(
            "profile `{name}` uses credential_process, which cannot work here: the daemon runs \
             in a scratch image with no shell or helper programs to start; use static keys, \
             role_arn with source_profile, or web_identity_token_file instead"
        ));
    }
    static_keys(name, profile)
}

/// `aws_access_key_id` + `aws_secret_access_key` (+ `aws_session_token`); half a pair is an error.
fn static_keys(name: &str, profile: &BTreeMap<String, String>) -> Result<Option<Base>, String> {
    let get = |key: &str| {
        profile
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(id), Some(secret)) => Ok(Some(Base::Static {
            profile: name.to_string(),
            access_key_id: id.to_string(),
            secret_access_key: Sensitive::new(secret),
            session_token: get("aws_session_token").map(Sensitive::new),
        })),
        (Some(_), None) => Err(format!(
            "profile `{name}` has aws_access_key_id but no aws_secret_access_key"
        )),
        (None, Some(_)) => Err(format!(
            "profile `{name}` has aws_secret_access_key but no aws_access_key_id"
        )),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREDENTIALS: &str = "\
# a comment
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = default-secret-key-0001

[base]
AWS_ACCESS_KEY_ID=AKIABASE
aws_secret_access_key=base-secret-key-00001 
aws_session_token = base-session-token-0001
; another comment
[half]
aws_access_key_id = AKIAHALF
";

    const CONFIG: &str = "\
[default]
region = eu-west-1
aws_access_key_id = AKIAFROMCONFIG

[profile middle]
role_arn = arn:aws:iam::123456789012:role/middle
source_profile = base
s3 =
  max_concurrent_requests = 10
  role_arn = not-a-property-of-middle

[profile top]   # inline comment after a header
role_arn = arn:aws:iam::123456789012:role/top
source_profile = middle
external_id = ext-1
role_session_name = top-session

[profile self]
role_arn = arn:aws:iam::123456789012:role/self
source_profile = self
aws_access_key_id = AKIASELF
aws_secret_access_key = self-secret-key-00001

[profile irsa]
role_arn = arn:aws:iam::123456789012:role/irsa
web_identity_token_file = /var/run/token

[profile from-env]
role_arn = arn:aws:iam::123456789012:role/env
credential_source = Environment

[profile from-imds]
role_arn = arn:aws:iam::123456789012:role/imds
credential_source = Ec2InstanceMetadata

[profile region-only]
region = us-east-1

[profile process]
credential_process = /usr/bin/get-creds

[profile sso]
sso_session = corp
sso_account_id = 123456789012

[profile loop-a]
role_arn = arn:aws:iam::123456789012:role/a
source_profile = loop-b

[profile loop-b]
role_arn = arn:aws:iam::123456789012:role/b
source_profile = loop-a

[profile dangling]
role_arn = arn:aws:iam::123456789012:role/d
source_profile = nowhere

[profile both]
role_arn = arn:aws:iam::123456789012:role/x
source_profile = base
credential_source = Environment

[profile bad-source]
role_arn = arn:aws:iam::123456789012:role/x
credential_source = Somewhere

[profile no-source]
role_arn = arn:aws:iam::123456789012:role/x

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start

[notaprofile]
aws_access_key_id = AKIAIGNORED
aws_secret_access_key = ignored-secret-00001
";

    fn set() -> ProfileSet {
        ProfileSet::from_texts(CREDENTIALS, CONFIG)
    }

    fn plan(name: &str) -> Plan {
        match resolve(&set(), name).expect("resolves") {
            Resolution::Plan(p) => p,
            Resolution::NoCredentials => panic!("profile {name} should give a plan"),
        }
    }

    fn error(name: &str) -> String {
        resolve(&set(), name).expect_err("should be refused")
    }

    #[test]
    fn credentials_file_wins_over_config_file() {
        let p = plan("default");
        assert!(p.roles.is_empty());
        match p.base {
            Base::Static {
                access_key_id,
                secret_access_key,
                session_token,
                ..
            } => {
                assert_eq!(access_key_id, "AKIADEFAULT");
                assert_eq!(secret_access_key.expose(), "default-secret-key-0001");
                assert!(session_token.is_none());
            }
            other => panic!("unexpected base {other:?}"),
        }
    }

    #[test]
    fn source_profile_chains_run_from_the_keys_up() {
        let p = plan("top");
        assert_eq!(
            p.roles
                .iter()
                .map(|r| r.role_arn.as_str())
                .collect::<Vec<_>>(),
            [
                "arn:aws:iam::123456789012:role/middle",
                "arn:aws:iam::123456789012:role/top"
            ]
        );
        assert_eq!(p.roles[1].external_id.as_deref(), Some("ext-1"));
        assert_eq!(p.roles[1].session_name.as_deref(), Some("top-session"));
        assert_eq!(p.roles[0].external_id, None);
        match &p.base {
            Base::Static {
                profile,
                access_key_id,
                session_token,
                ..
            } => {
                assert_eq!(profile, "base");
                assert_eq!(
                    access_key_id, "AKIABASE",
                    "property names are case-insensitive"
                );
                assert_eq!(
                    session_token.as_ref().map(Sensitive::expose),
                    Some("base-session-token-0001")
                );
            }
            other => panic!("unexpected base {other:?}"),
        }
        assert_eq!(
            p.describe(),
            "role arn:aws:iam::123456789012:role/top of profile `top` <- role arn:aws:iam::123456789012:role/middle of profile `middle` <- static keys of profile `base`"
        );
        assert!(!p.describe().contains("secret"));
    }

    #[test]
    fn other_bases() {
        let p = plan("self");
        assert_eq!(p.roles.len(), 1);
        assert!(
            matches!(p.base, Base::Static { ref access_key_id, .. } if access_key_id == "AKIASELF")
        );
        let p = plan("irsa");
        assert!(
            p.roles.is_empty(),
            "a web identity profile is a base, not a role"
        );
        assert!(
            matches!(p.base, Base::WebIdentity { ref token_file, .. } if token_file == Path::new("/var/run/token"))
        );
        assert!(matches!(plan("from-env").base, Base::Environment));
        assert!(matches!(plan("from-imds").base, Base::InstanceMetadata));
    }

    #[test]
    fn a_profile_without_credentials_lets_the_chain_go_on() {
        assert!(matches!(
            resolve(&set(), "region-only"),
            Ok(Resolution::NoCredentials)
        ));
        assert!(
            !set().contains("notaprofile"),
            "config sections need `profile `"
        );
        assert!(!set().contains("corp"));
    }

    #[test]
    fn misconfigurations_are_explained() {
        let e = error("process");
        assert!(
            e.contains("credential_process") && e.contains("scratch image"),
            "{e}"
        );
        assert!(error("sso").contains("IAM Identity Center"));
        assert!(error("loop-a").contains("loop: loop-a -> loop-b -> loop-a"));
        assert!(error("dangling").contains("profile `nowhere` (the source_profile of `dangling`)"));
        assert!(error("both").contains("both source_profile and credential_source"));
        assert!(error("bad-source").contains("\"Somewhere\""));
        assert!(error("no-source").contains("neither source_profile nor credential_source"));
        assert!(error("half").contains("no aws_secret_access_key"));
    }

    #[test]
    fn the_keys_used_are_masked_in_logs() {
        let _ = plan("top");
        assert_eq!(
            crate::sensitive::scrub("a base-secret-key-00001 b"),
            "a *** b"
        );
    }
}
