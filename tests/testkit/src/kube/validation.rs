//! Object decoding and validation as the kube-apiserver does it for core/v1 Secrets,
//! ServiceAccounts and Namespaces (pkg/apis/core/validation, apimachinery pkg/util/validation):
//! DNS-1123 names, config-map keys, label keys/values, the 1 MiB data limit, the per-type required
//! keys, docker config JSON content, `type` and `immutable` update rules. Messages are the Go ones.

use super::status::Cause;
use base64::Engine;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub const MAX_SECRET_SIZE: usize = 1024 * 1024;

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn max_len(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn is_lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn label_ok(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && is_lower_alnum(b[0])
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
}

pub fn is_dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push(max_len(253));
    }
    if !s.split('.').all(label_ok) {
        errs.push(DNS1123_SUBDOMAIN_MSG.into());
    }
    errs
}

pub fn is_dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len(63));
    }
    if !label_ok(s) {
        errs.push(DNS1123_LABEL_MSG.into());
    }
    errs
}

pub fn is_config_map_key(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push(max_len(253));
    }
    if s.is_empty()
        || !s
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_')
    {
        errs.push(CONFIG_KEY_MSG.into());
    }
    if s == "." {
        errs.push("must not be '.'".into());
    } else if s == ".." {
        errs.push("must not be '..'".into());
    } else if s.starts_with("..") {
        errs.push("must not start with '..'".into());
    }
    errs
}

fn name_part_ok(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
}

/// Label / annotation keys: `[prefix/]name`.
pub fn is_qualified_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            errs.push("prefix part must be non-empty".into());
        } else {
            for e in is_dns1123_subdomain(p) {
                errs.push(format!("prefix part {e}"));
            }
        }
        if name.contains('/') {
            errs.push(format!("a qualified name {QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"));
            return errs;
        }
    }
    if name.is_empty() {
        errs.push("name part must be non-empty".into());
    } else {
        if name.len() > 63 {
            errs.push(format!("name part {}", max_len(63)));
        }
        if !name_part_ok(name) {
            errs.push(QUALIFIED_NAME_MSG.into());
        }
    }
    errs
}

pub fn is_valid_label_value(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len(63));
    }
    if !s.is_empty() && !name_part_ok(s) {
        errs.push(LABEL_VALUE_MSG.into());
    }
    errs
}

/// Checks the JSON types of the common metadata fields; the error is a 400 decode message.
pub fn check_meta_types(obj: &Value) -> Result<(), String> {
    let Some(meta) = obj.get("metadata") else {
        return Ok(());
    };
    if meta.is_null() {
        return Ok(());
    }
    let Some(meta) = meta.as_object() else {
        return Err(
            "json: cannot unmarshal into Go struct field .metadata of type v1.ObjectMeta".into(),
        );
    };
    for f in [
        "name",
        "namespace",
        "generateName",
        "resourceVersion",
        "uid",
    ] {
        match meta.get(f) {
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(v) => {
                return Err(format!(
                    "json: cannot unmarshal {} into Go struct field ObjectMeta.metadata.{f} of type string",
                    json_type(v)
                ));
            }
        }
    }
    for f in ["labels", "annotations"] {
        if let Some(v) = meta.get(f) {
            string_map(v, &format!("ObjectMeta.metadata.{f}"))?;
        }
    }
    Ok(())
}

/// The Go name of a JSON value's type, as encoding/json prints it.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `v` must be null or an object of strings.
pub fn string_map(v: &Value, what: &str) -> Result<(), String> {
    match v {
        Value::Null => Ok(()),
        Value::Object(m) => {
            for x in m.values() {
                if !x.is_string() {
                    return Err(format!(
                        "json: cannot unmarshal {} into Go struct field {what} of type string",
                        json_type(x)
                    ));
                }
            }
            Ok(())
        }
        other => Err(format!(
            "json: cannot unmarshal {} into Go struct field {what} of type map[string]string",
            json_type(other)
        )),
    }
}

/// Merges `stringData` into `data` (base64-encoding it), defaults `type` to Opaque and drops empty
/// maps; then decodes `data`. The error is the 400 decode message.
pub fn normalize_secret(obj: &mut Value) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let prefix = "Secret in version \"v1\" cannot be handled as a Secret: ";
    check_meta_types(obj).map_err(|e| format!("{prefix}{e}"))?;
    let Some(o) = obj.as_object_mut() else {
        return Err(format!(
            "{prefix}json: cannot unmarshal into Go value of type v1.Secret"
        ));
    };
    if let Some(d) = o.get("data") {
        string_map(d, "Secret.data").map_err(|e| format!("{prefix}{e}"))?;
    }
    if let Some(d) = o.get("stringData") {
        string_map(d, "Secret.stringData").map_err(|e| format!("{prefix}{e}"))?;
    }
    match o.get("type") {
        None | Some(Value::Null) => {
            o.insert("type".into(), Value::String("Opaque".into()));
        }
        Some(Value::String(s)) if s.is_empty() => {
            o.insert("type".into(), Value::String("Opaque".into()));
        }
        Some(Value::String(_)) => {}
        Some(other) => {
            return Err(format!(
                "{prefix}json: cannot unmarshal {} into Go struct field Secret.type of type v1.SecretType",
                json_type(other)
            ));
        }
    }
    match o.get("immutable") {
        None | Some(Value::Null) | Some(Value::Bool(_)) => {}
        Some(other) => {
            return Err(format!(
                "{prefix}json: cannot unmarshal {} into Go struct field Secret.immutable of type bool",
                json_type(other)
            ));
        }
    }
    let mut decoded = BTreeMap::new();
    if let Some(Value::Object(data)) = o.get("data") {
        for (k, v) in data {
            let s = v.as_str().unwrap_or_default();
            let bytes = b64
                .decode(s)
                .map_err(|e| format!("{prefix}{}", go_base64_error(&e)))?;
            decoded.insert(k.clone(), bytes);
        }
    }
    if let Some(Value::Object(sd)) = o.remove("stringData") {
        let data = o.entry("data").or_insert_with(|| Value::Object(Map::new()));
        if !data.is_object() {
            *data = Value::Object(Map::new());
        }
        if let Some(data) = data.as_object_mut() {
            for (k, v) in sd {
                let s = v.as_str().unwrap_or_default().to_string();
                data.insert(k.clone(), Value::String(b64.encode(s.as_bytes())));
                decoded.insert(k, s.into_bytes());
            }
        }
    }
    drop_empty(o, "data");
    if let Some(Value::Object(meta)) = o.get_mut("metadata") {
        drop_empty(meta, "labels");
        drop_empty(meta, "annotations");
    }
    Ok(decoded)
}

/// Removes `key` when it is null or an empty object/array (Go's omitempty after a round trip).
pub fn drop_empty(o: &mut Map<String, Value>, key: &str) {
    let empty = match o.get(key) {
        Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    };
    if empty {
        o.remove(key);
    }
}

fn go_base64_error(e: &base64::DecodeError) -> String {
    match e {
        base64::DecodeError::InvalidByte(off, _) => {
            format!("illegal base64 data at input byte {off}")
        }
        base64::DecodeError::InvalidLastSymbol(off, _) => {
            format!("illegal base64 data at input byte {off}")
        }
        base64::DecodeError::InvalidLength(n) => format!("illegal base64 data at input byte {n}"),
        base64::DecodeError::InvalidPadding => "illegal base64 data at input byte 0".into(),
    }
}

fn meta_str<'a>(obj: &'a Value, f: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(f))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// ValidateObjectMeta: name required and well-formed (`label_name`: DNS-1123 label instead of
/// subdomain), labels well-formed.
pub fn validate_meta(obj: &Value, label_name: bool) -> Vec<Cause> {
    let mut causes = Vec::new();
    let name = meta_str(obj, "name");
    if name.is_empty() {
        causes.push(Cause::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        let errs = if label_name {
            is_dns1123_label(name)
        } else {
            is_dns1123_subdomain(name)
        };
        for e in errs {
            causes.push(Cause::invalid("metadata.name", name, &e));
        }
    }
    if let Some(Value::Object(labels)) = obj.get("metadata").and_then(|m| m.get("labels")) {
        for (k, v) in labels {
            for e in is_qualified_name(k) {
                causes.push(Cause::invalid("metadata.labels", k, &e));
            }
            let v = v.as_str().unwrap_or("");
            for e in is_valid_label_value(v) {
                causes.push(Cause::invalid("metadata.labels", v, &e));
            }
        }
    }
    if let Some(Value::Object(ann)) = obj.get("metadata").and_then(|m| m.get("annotations")) {
        for k in ann.keys() {
            for e in is_qualified_name(&k.to_lowercase()) {
                causes.push(Cause::invalid("metadata.annotations", k, &e));
            }
        }
    }
    causes
}

/// Go's `json.Unmarshal(b, &map[string]interface{}{})` error, if any.
fn json_object_error(b: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Value>(b) {
        Ok(Value::Object(_)) | Ok(Value::Null) => None,
        Ok(other) => Some(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_type(&other)
        )),
        Err(e) => {
            if e.is_eof() {
                return Some("unexpected end of JSON input".into());
            }
            let first = b.iter().find(|c| !c.is_ascii_whitespace()).copied();
            match first {
                Some(c) if !b"{[\"-0123456789tfn".contains(&c) => Some(format!(
                    "invalid character '{}' looking for beginning of value",
                    c as char
                )),
                _ => Some(format!("invalid JSON: {e}")),
            }
        }
    }
}

/// ValidateSecret.
pub fn validate_secret(obj: &Value, data: &BTreeMap<String, Vec<u8>>) -> Vec<Cause> {
    let mut causes = validate_meta(obj, false);
    let mut total = 0usize;
    for (k, v) in data {
        for e in is_config_map_key(k) {
            causes.push(Cause::invalid(&format!("data[{k}]"), k, &e));
        }
        total += v.len();
    }
    if total > MAX_SECRET_SIZE {
        causes.push(Cause::too_long_bytes("data", MAX_SECRET_SIZE));
    }
    let ty = obj.get("type").and_then(Value::as_str).unwrap_or("Opaque");
    let docker = |key: &str, causes: &mut Vec<Cause>| {
        let field = format!("data[{key}]");
        match data.get(key) {
            None => causes.push(Cause::required(&field, "")),
            Some(b) => {
                if let Some(e) = json_object_error(b) {
                    causes.push(Cause::invalid(&field, "<secret contents redacted>", &e));
                }
            }
        }
    };
    match ty {
        "kubernetes.io/dockerconfigjson" => docker(".dockerconfigjson", &mut causes),
        "kubernetes.io/dockercfg" => docker(".dockercfg", &mut causes),
        "kubernetes.io/basic-auth"
            if !data.contains_key("username") && !data.contains_key("password") =>
        {
            causes.push(Cause::required("data[username]", ""));
            causes.push(Cause::required("data[password]", ""));
        }
        "kubernetes.io/ssh-auth" if data.get("ssh-privatekey").is_none_or(|v| v.is_empty()) => {
            causes.push(Cause::required("data[ssh-privatekey]", ""));
        }
        "kubernetes.io/tls" => {
            if !data.contains_key("tls.crt") {
                causes.push(Cause::required("data[tls.crt]", ""));
            }
            if !data.contains_key("tls.key") {
                causes.push(Cause::required("data[tls.key]", ""));
            }
        }
        "kubernetes.io/service-account-token" => {
            let has = obj
                .get("metadata")
                .and_then(|m| m.get("annotations"))
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty());
            if !has {
                causes.push(Cause::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                ));
            }
        }
        _ => {}
    }
    causes
}

/// ValidateObjectMetaUpdate's rule that matters here: `metadata.uid` is immutable, so an update
/// whose object carries another uid (a PATCH written for an object since deleted and re-created)
/// is 422 `metadata.uid: Invalid value: "OLD": field is immutable`, the value shown being the one
/// the request carried. An empty uid is the stored one (rest.BeforeUpdate fills it in).
pub fn validate_meta_update(new: &Value, old: &Value) -> Vec<Cause> {
    let (uid, old_uid) = (meta_str(new, "uid"), meta_str(old, "uid"));
    if !uid.is_empty() && uid != old_uid {
        return vec![Cause::invalid("metadata.uid", uid, "field is immutable")];
    }
    Vec::new()
}

/// ValidateSecretUpdate's own rules (ValidateSecret runs as well).
pub fn validate_secret_update(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let nt = new.get("type").and_then(Value::as_str).unwrap_or("Opaque");
    let ot = old.get("type").and_then(Value::as_str).unwrap_or("Opaque");
    if nt != ot {
        causes.push(Cause::invalid("type", nt, "field is immutable"));
    }
    if old.get("immutable") == Some(&Value::Bool(true)) {
        if new.get("immutable") != Some(&Value::Bool(true)) {
            causes.push(Cause::forbidden(
                "immutable",
                "field is immutable when `immutable` is set",
            ));
        }
        let empty = Value::Object(Map::new());
        if new.get("data").unwrap_or(&empty) != old.get("data").unwrap_or(&empty) {
            causes.push(Cause::forbidden(
                "data",
                "field is immutable when `immutable` is set",
            ));
        }
    }
    causes
}

/// ServiceAccount decode checks (400) and empty-map cleanup.
pub fn normalize_service_account(obj: &mut Value) -> Result<(), String> {
    let prefix = "ServiceAccount in version \"v1\" cannot be handled as a ServiceAccount: ";
    check_meta_types(obj).map_err(|e| format!("{prefix}{e}"))?;
    let Some(o) = obj.as_object_mut() else {
        return Err(format!(
            "{prefix}json: cannot unmarshal into Go value of type v1.ServiceAccount"
        ));
    };
    for f in ["imagePullSecrets", "secrets"] {
        match o.get(f) {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) => {
                if let Some(bad) = a.iter().find(|x| !x.is_object()) {
                    return Err(format!(
                        "{prefix}json: cannot unmarshal {} into Go struct field ServiceAccount.{f} of type v1.LocalObjectReference",
                        json_type(bad)
                    ));
                }
            }
            Some(other) => {
                return Err(format!(
                    "{prefix}json: cannot unmarshal {} into Go struct field ServiceAccount.{f} of type []v1.LocalObjectReference",
                    json_type(other)
                ));
            }
        }
        drop_empty(o, f);
    }
    if let Some(Value::Object(meta)) = o.get_mut("metadata") {
        drop_empty(meta, "labels");
        drop_empty(meta, "annotations");
    }
    Ok(())
}

/// Namespace decode checks (400) and defaults (the `kubernetes.io/metadata.name` label, finalizer,
/// phase).
pub fn normalize_namespace(obj: &mut Value) -> Result<(), String> {
    let prefix = "Namespace in version \"v1\" cannot be handled as a Namespace: ";
    check_meta_types(obj).map_err(|e| format!("{prefix}{e}"))?;
    let name = meta_str(obj, "name").to_string();
    let Some(o) = obj.as_object_mut() else {
        return Err(format!(
            "{prefix}json: cannot unmarshal into Go value of type v1.Namespace"
        ));
    };
    let meta = o
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(meta) = meta.as_object_mut() {
        if !name.is_empty() {
            let labels = meta
                .entry("labels")
                .or_insert_with(|| Value::Object(Map::new()));
            if !labels.is_object() {
                *labels = Value::Object(Map::new());
            }
            labels["kubernetes.io/metadata.name"] = Value::String(name);
        }
        drop_empty(meta, "annotations");
    }
    if !o.get("spec").is_some_and(Value::is_object) {
        o.insert(
            "spec".into(),
            serde_json::json!({"finalizers": ["kubernetes"]}),
        );
    }
    if o.get("status")
        .and_then(|s| s.get("phase"))
        .and_then(Value::as_str)
        .is_none()
    {
        o.insert("status".into(), serde_json::json!({"phase": "Active"}));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_and_keys() {
        assert!(is_dns1123_subdomain("ecr-creds.v1").is_empty());
        assert!(!is_dns1123_subdomain("Bad_Name").is_empty());
        assert!(!is_dns1123_subdomain("-a").is_empty());
        assert!(!is_dns1123_subdomain(&"a".repeat(254)).is_empty());
        assert!(is_config_map_key(".dockerconfigjson").is_empty());
        assert_eq!(is_config_map_key("..x"), vec!["must not start with '..'"]);
        assert_eq!(is_config_map_key("."), vec!["must not be '.'"]);
        assert!(!is_config_map_key("a b").is_empty());
        assert!(is_qualified_name("example.com/team").is_empty());
        assert!(!is_qualified_name("bad key").is_empty());
        assert!(is_valid_label_value("").is_empty());
        assert!(!is_valid_label_value("-x").is_empty());
    }

    #[test]
    fn secret_rules() {
        let mut s = json!({"metadata": {"name": "x"}, "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": "[1]"}});
        let d = normalize_secret(&mut s).unwrap();
        let c = validate_secret(&s, &d);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].field, "data[.dockerconfigjson]");
        assert!(
            c[0].message.contains("cannot unmarshal array"),
            "{}",
            c[0].message
        );
        let mut s = json!({"metadata": {"name": "x"}, "data": {"k": "!!"}});
        assert!(
            normalize_secret(&mut s)
                .unwrap_err()
                .contains("illegal base64 data at input byte 0")
        );
        let mut s = json!({"metadata": {"name": "x"}});
        normalize_secret(&mut s).unwrap();
        assert_eq!(s["type"], "Opaque");
        assert!(s.get("data").is_none());
    }
}
