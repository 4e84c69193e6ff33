//! Which namespaces are targets: `ECR_NAMESPACES` (names or globs; default all) minus
//! `ECR_SKIP_NAMESPACES` (same syntax). Globs know `*` (any run of characters) and `?` (one
//! character); everything else matches itself. The label selector (`ECR_NAMESPACE_SELECTOR`) is
//! not here: it goes to the API server, which filters the list itself.

/// Include and exclude patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Namespaces to serve; empty means all.
    pub include: Vec<String>,
    /// Namespaces never touched; wins over `include`.
    pub exclude: Vec<String>,
}

impl Selection {
    /// Whether `namespace` is a target.
    pub fn wants(&self, namespace: &str) -> bool {
        let included =
            self.include.is_empty() || self.include.iter().any(|p| glob_match(p, namespace));
        included && !self.exclude.iter().any(|p| glob_match(p, namespace))
    }
}

/// Whether `name` matches the glob `pattern` (`*` and `?`), iteratively with backtracking to
/// the last star, so the cost stays linear in practice and never recursive.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((star_p, star_n)) = star {
            pi = star_p + 1;
            ni = star_n + 1;
            star = Some((star_p, star_n + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Checks a label selector's syntax (`k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`,
/// `k`, `!k`, joined by commas), so a typo is a start-up error rather than a 400 every cycle.
pub fn validate_label_selector(selector: &str) -> Result<(), String> {
    for requirement in split_requirements(selector)? {
        let r = requirement.trim();
        if r.is_empty() {
            return Err("has an empty requirement (two commas in a row?)".into());
        }
        let (key, rest) = split_key(r);
        let key = key.strip_prefix('!').unwrap_or(key);
        validate_label_key(key).map_err(|e| format!("{r:?}: {e}"))?;
        let rest = rest.trim();
        if rest.is_empty() {
            continue;
        }
        if r.starts_with('!') {
            return Err(format!("{r:?}: '!key' takes no value"));
        }
        let value_part =
            if let Some(v) = rest.strip_prefix("==").or_else(|| rest.strip_prefix("!=")) {
                v
            } else if let Some(v) = rest.strip_prefix('=') {
                v
            } else if let Some(v) = rest
                .strip_prefix("notin")
                .or_else(|| rest.strip_prefix("in"))
            {
                let v = v.trim();
                let inner = v
                    .strip_prefix('(')
                    .and_then(|v| v.strip_suffix(')'))
                    .ok_or_else(|| format!("{r:?}: 'in' and 'notin' take a list in parentheses"))?;
                for value in inner.split(',') {
                    validate_label_value(value.trim()).map_err(|e| format!("{r:?}: {e}"))?;
                }
                continue;
            } else {
                return Err(format!(
                    "{r:?}: expected =, ==, !=, in or notin after the key"
                ));
            };
        validate_label_value(value_part.trim()).map_err(|e| format!("{r:?}: {e}"))?;
    }
    Ok(())
}

/// Splits at commas outside parentheses.
fn split_requirements(selector: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if depth < 0 {
            return Err("has a ')' without '('".into());
        }
    }
    if depth != 0 {
        return Err("has a '(' without ')'".into());
    }
    out.push(&selector[start..]);
    Ok(out)
}

/// The key (with a leading `!`, if any) and what follows it.
fn split_key(requirement: &str) -> (&str, &str) {
    let bang = usize::from(requirement.starts_with('!'));
    let body = &requirement[bang..];
    let end = body
        .find(|c: char| c == '=' || c == '!' || c.is_whitespace())
        .unwrap_or(body.len());
    requirement.split_at(bang + end)
}

fn validate_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !crate::names::is_dns1123_subdomain(prefix)
    {
        return Err(format!("bad key prefix {prefix:?}"));
    }
    if name.is_empty() || name.len() > 63 || !is_label_text(name) {
        return Err(format!("bad label key {key:?}"));
    }
    Ok(())
}

fn validate_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || (value.len() <= 63 && is_label_text(value)) {
        Ok(())
    } else {
        Err(format!("bad label value {value:?}"))
    }
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`
fn is_label_text(s: &str) -> bool {
    let ok_edge = |c: char| c.is_ascii_alphanumeric();
    s.chars().next().is_some_and(ok_edge)
        && s.chars().last().is_some_and(ok_edge)
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("team-*", "team-a"));
        assert!(glob_match("team-*", "team-"));
        assert!(!glob_match("team-*", "teams"));
        assert!(glob_match("*-prod", "shop-prod"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("ns-?", "ns-1"));
        assert!(!glob_match("ns-?", "ns-12"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn include_and_exclude() {
        let all = Selection::default();
        assert!(all.wants("anything"));
        let s = Selection {
            include: vec!["team-*".into(), "shared".into()],
            exclude: vec!["team-legacy*".into()],
        };
        assert!(s.wants("team-a"));
        assert!(s.wants("shared"));
        assert!(!s.wants("team-legacy-1"));
        assert!(!s.wants("kube-system"));
    }

    #[test]
    fn label_selectors() {
        for ok in [
            "env=prod",
            "env==prod",
            "env!=prod",
            "env in (a,b)",
            "env notin (a, b)",
            "pull",
            "!pull",
            "app.kubernetes.io/part-of=shop,env",
            "tier in (web),!legacy",
        ] {
            assert_eq!(validate_label_selector(ok), Ok(()), "{ok}");
        }
        for bad in [
            "env=",
            "env in a,b",
            "=x",
            "env=pr od",
            "a,,b",
            "env in (a",
            "!env=x",
            "Bad Key",
        ] {
            if bad == "env=" {
                // An empty value is valid Kubernetes syntax (matches the empty label value).
                assert!(validate_label_selector(bad).is_ok());
                continue;
            }
            assert!(validate_label_selector(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_key_and_value_limits() {
        let (k63, k64) = ("k".repeat(63), "k".repeat(64));
        for ok in [
            format!("{k63}=v"),
            format!("example.com/{k63}"),
            format!("env={k63}"),
            "a_b.c-d=x_y.z-1".to_string(),
        ] {
            assert_eq!(validate_label_selector(&ok), Ok(()), "{ok}");
        }
        for bad in [
            format!("{k64}=v"),
            format!("example.com/{k64}"),
            format!("env={k64}"),
            "example.com/=v".to_string(),
            "-key=v".to_string(),
            "key-=v".to_string(),
            "ke$y=v".to_string(),
            "env=-v".to_string(),
            "bad_prefix!/key=v".to_string(),
            "a)b(".to_string(),
        ] {
            assert!(validate_label_selector(&bad).is_err(), "{bad}");
        }
    }
}
