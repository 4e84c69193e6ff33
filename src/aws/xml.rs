//! A small hand parser for the XML that STS answers with: the raw content of the first element
//! with a given name ([`element`]), and its text with entities decoded ([`text`]). Enough for
//! `<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>..`; not a general parser
//! (no CDATA, no namespace prefixes: STS uses neither).

/// The raw content of the first `<tag>..</tag>` (or `<tag attr="..">..</tag>`) in `xml`;
/// `Some("")` for `<tag/>`. Nested elements of the same name are not supported (STS has none).
pub fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(found) = xml[from..].find('<') {
        let start = from + found + 1;
        let rest = &xml[start..];
        from = start;
        let Some(after_name) = rest.strip_prefix(tag) else {
            continue;
        };
        // The name must end here: `<Credentials>` is not `<CredentialsX>`.
        let next = after_name.chars().next()?;
        if !(next == '>' || next == '/' || next.is_ascii_whitespace()) {
            continue;
        }
        let open_end = start + tag.len() + after_name.find('>')?;
        if xml[..open_end].ends_with('/') {
            return Some("");
        }
        let content_start = open_end + 1;
        let close = format!("</{tag}>");
        let len = xml[content_start..].find(&close)?;
        return Some(&xml[content_start..content_start + len]);
    }
    None
}

/// The trimmed text of the first `<tag>` element, entities decoded.
pub fn text(xml: &str, tag: &str) -> Option<String> {
    element(xml, tag).map(|raw| decode_entities(raw.trim()))
}

/// Decodes the five named XML entities and numeric references (`&#38;`, `&#x26;`). Anything
/// that is not a well-formed reference is kept as it is.
pub fn decode_entities(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').and_then(|semi| {
            let name = &rest[1..semi];
            let c = match name {
                "lt" => Some('<'),
                "gt" => Some('>'),
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => {
                    let code = match name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => name.strip_prefix('#').and_then(|d| d.parse().ok()),
                    };
                    code.and_then(char::from_u32)
                }
            };
            c.map(|c| (c, semi + 1))
        });
        match decoded {
            Some((c, used)) => {
                out.push(c);
                rest = &rest[used..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
      <SecretAccessKey>a+b/c&amp;d</SecretAccessKey>
      <SessionToken>tok&#x3D;&#61;</SessionToken>
      <Expiration>2026-11-29T14:35:04.328361Z</Expiration>
    </Credentials>
  </AssumeRoleResult>
</AssumeRoleResponse>"#;

    #[test]
    fn finds_nested_elements_and_decodes_text() {
        let creds = element(ANSWER, "Credentials").expect("credentials");
        assert_eq!(text(creds, "AccessKeyId").as_deref(), Some("ASIAEXAMPLE"));
        assert_eq!(text(creds, "SecretAccessKey").as_deref(), Some("a+b/c&d"));
        assert_eq!(text(creds, "SessionToken").as_deref(), Some("tok=="));
        assert_eq!(
            text(ANSWER, "Expiration").as_deref(),
            Some("2026-11-29T14:35:04.328361Z")
        );
        assert!(
            element(ANSWER, "AssumeRoleResponse").is_some(),
            "attributes"
        );
    }

    #[test]
    fn names_must_match_whole() {
        let xml = "<CredentialsX>no</CredentialsX><Credentials>yes</Credentials>";
        assert_eq!(text(xml, "Credentials").as_deref(), Some("yes"));
        assert_eq!(text(xml, "Credential"), None);
        assert_eq!(text("<Code/>", "Code").as_deref(), Some(""));
        assert_eq!(text("<Code attr='1' />", "Code").as_deref(), Some(""));
        assert_eq!(text("<Code>unclosed", "Code"), None);
        assert_eq!(text("", "Code"), None);
        assert_eq!(text("<Code", "Code"), None);
    }

    #[test]
    fn malformed_references_are_kept() {
        assert_eq!(
            decode_entities("a & b &bogus; &#xZZ; &"),
            "a & b &bogus; &#xZZ; &"
        );
        assert_eq!(decode_entities("&lt;&gt;&quot;&apos;"), "<>\"'");
        assert_eq!(decode_entities("&amp;lt;"), "&lt;");
    }
}
