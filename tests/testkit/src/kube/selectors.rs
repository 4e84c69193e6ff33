//! Label selectors (`k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, `k>n`, `k<n`;
//! comma = AND) and field selectors (`f=v`, `f==v`, `f!=v`, backslash escapes; comma = AND), parsed
//! and matched like k8s.io/apimachinery pkg/labels and pkg/fields. Which field labels a kind accepts
//! is decided by the caller (see `Res::field_labels`).

use super::validation::{is_qualified_name, is_valid_label_value};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
    Gt(i64),
    Lt(i64),
}

#[derive(Debug, Clone, PartialEq)]
struct Requirement {
    key: String,
    op: Op,
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LabelSelector(Vec<Requirement>);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Eq,
    DoubleEq,
    NotEq,
    Bang,
    Gt,
    Lt,
    Open,
    Close,
    Comma,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let b: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1
            }
            ')' => {
                out.push(Tok::Close);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            '>' => {
                out.push(Tok::Gt);
                i += 1
            }
            '<' => {
                out.push(Tok::Lt);
                i += 1
            }
            '=' => {
                if b.get(i + 1) == Some(&'=') {
                    out.push(Tok::DoubleEq);
                    i += 2
                } else {
                    out.push(Tok::Eq);
                    i += 1
                }
            }
            '!' => {
                if b.get(i + 1) == Some(&'=') {
                    out.push(Tok::NotEq);
                    i += 2
                } else {
                    out.push(Tok::Bang);
                    i += 1
                }
            }
            _ => {
                let start = i;
                while i < b.len() && !" \t\n\r(),<>=!".contains(b[i]) {
                    i += 1;
                }
                out.push(Tok::Ident(b[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

fn tok_text(t: Option<&Tok>) -> String {
    match t {
        None => "end of string".into(),
        Some(Tok::Ident(s)) => s.clone(),
        Some(Tok::Eq) => "=".into(),
        Some(Tok::DoubleEq) => "==".into(),
        Some(Tok::NotEq) => "!=".into(),
        Some(Tok::Bang) => "!".into(),
        Some(Tok::Gt) => ">".into(),
        Some(Tok::Lt) => "<".into(),
        Some(Tok::Open) => "(".into(),
        Some(Tok::Close) => ")".into(),
        Some(Tok::Comma) => ",".into(),
    }
}

impl LabelSelector {
    /// Parses a (URL-decoded) label selector. The error text is the 400 message.
    pub fn parse(s: &str) -> Result<LabelSelector, String> {
        let toks = lex(s)?;
        let mut reqs = Vec::new();
        let mut i = 0;
        if toks.is_empty() {
            return Ok(LabelSelector(reqs));
        }
        loop {
            let (req, next) = parse_requirement(&toks, i)?;
            validate_requirement(&req)?;
            reqs.push(req);
            i = next;
            match toks.get(i) {
                None => break,
                Some(Tok::Comma) => {
                    i += 1;
                    if i >= toks.len() {
                        return Err(
                            "unable to parse requirement: found '', expected: identifier".into(),
                        );
                    }
                }
                other => {
                    return Err(format!(
                        "found '{}', expected: ',' or 'end of string'",
                        tok_text(other)
                    ));
                }
            }
        }
        Ok(LabelSelector(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.0.iter().all(|r| {
            let v = labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str);
            match &r.op {
                Op::Eq(x) => v == Some(x.as_str()),
                Op::NotEq(x) => v != Some(x.as_str()),
                Op::In(set) => v.is_some_and(|v| set.iter().any(|s| s == v)),
                Op::NotIn(set) => v.is_none_or(|v| !set.iter().any(|s| s == v)),
                Op::Exists => v.is_some(),
                Op::NotExists => v.is_none(),
                Op::Gt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|x| x > *n),
                Op::Lt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|x| x < *n),
            }
        })
    }
}

fn parse_requirement(toks: &[Tok], mut i: usize) -> Result<(Requirement, usize), String> {
    let unable = |msg: String| format!("unable to parse requirement: {msg}");
    if toks.get(i) == Some(&Tok::Bang) {
        i += 1;
        return match toks.get(i) {
            Some(Tok::Ident(k)) => Ok((
                Requirement {
                    key: k.clone(),
                    op: Op::NotExists,
                },
                i + 1,
            )),
            other => Err(unable(format!(
                "found '{}', expected: identifier after '!'",
                tok_text(other)
            ))),
        };
    }
    let key = match toks.get(i) {
        Some(Tok::Ident(k)) => k.clone(),
        other => {
            return Err(unable(format!(
                "found '{}', expected: !, identifier, or 'end of string'",
                tok_text(other)
            )));
        }
    };
    i += 1;
    let single_value = |i: usize| -> (String, usize) {
        match toks.get(i) {
            Some(Tok::Ident(v)) => (v.clone(), i + 1),
            _ => (String::new(), i),
        }
    };
    match toks.get(i) {
        None | Some(Tok::Comma) => Ok((
            Requirement {
                key,
                op: Op::Exists,
            },
            i,
        )),
        Some(Tok::Eq) | Some(Tok::DoubleEq) => {
            let (v, n) = single_value(i + 1);
            Ok((Requirement { key, op: Op::Eq(v) }, n))
        }
        Some(Tok::NotEq) => {
            let (v, n) = single_value(i + 1);
            Ok((
                Requirement {
                    key,
                    op: Op::NotEq(v),
                },
                n,
            ))
        }
        Some(Tok::Gt) | Some(Tok::Lt) => {
            let gt = toks.get(i) == Some(&Tok::Gt);
            let (v, n) = single_value(i + 1);
            let num: i64 = v.parse().map_err(|_| {
                unable(format!(
                    "for 'Gt', 'Lt' operators, the value must be an integer: {v:?}"
                ))
            })?;
            let op = if gt { Op::Gt(num) } else { Op::Lt(num) };
            Ok((Requirement { key, op }, n))
        }
        Some(Tok::Ident(w)) if w == "in" || w == "notin" => {
            let is_in = w == "in";
            i += 1;
            if toks.get(i) != Some(&Tok::Open) {
                return Err(unable(format!(
                    "found '{}', expected: '('",
                    tok_text(toks.get(i))
                )));
            }
            i += 1;
            let mut vals = Vec::new();
            let mut expect_value = true;
            loop {
                match toks.get(i) {
                    Some(Tok::Ident(v)) if expect_value => {
                        vals.push(v.clone());
                        expect_value = false;
                    }
                    Some(Tok::Comma) => {
                        if expect_value {
                            vals.push(String::new());
                        }
                        expect_value = true;
                    }
                    Some(Tok::Close) => {
                        if expect_value && !vals.is_empty() {
                            vals.push(String::new());
                        }
                        i += 1;
                        break;
                    }
                    other => {
                        return Err(unable(format!(
                            "found '{}', expected: ',', ')' or identifier",
                            tok_text(other)
                        )));
                    }
                }
                i += 1;
            }
            if vals.is_empty() {
                return Err(unable(
                    "for 'in', 'notin' operators, values set can't be empty".into(),
                ));
            }
            let op = if is_in { Op::In(vals) } else { Op::NotIn(vals) };
            Ok((Requirement { key, op }, i))
        }
        other => Err(unable(format!(
            "found '{}', expected: in, notin, =, ==, !=, gt, lt",
            tok_text(other)
        ))),
    }
}

fn validate_requirement(r: &Requirement) -> Result<(), String> {
    let errs = is_qualified_name(&r.key);
    if let Some(e) = errs.first() {
        return Err(format!(
            "unable to parse requirement: key: Invalid value: {:?}: {e}",
            r.key
        ));
    }
    let vals: Vec<&String> = match &r.op {
        Op::Eq(v) | Op::NotEq(v) => vec![v],
        Op::In(vs) | Op::NotIn(vs) => vs.iter().collect(),
        _ => vec![],
    };
    for v in vals {
        if let Some(e) = is_valid_label_value(v).first() {
            return Err(format!(
                "unable to parse requirement: values[0][{}]: Invalid value: {v:?}: {e}",
                r.key
            ));
        }
    }
    Ok(())
}

/// A parsed field selector.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FieldSelector(Vec<(String, bool, String)>); // (field, equal?, value)

impl FieldSelector {
    /// Parses and checks field labels against `supported`. Errors are 400 messages.
    pub fn parse(s: &str, supported: &[&str]) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for part in split_unescaped(s, ',') {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_term(&part) else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            let field = unescape(lhs.trim());
            if !supported.contains(&field.as_str()) {
                return Err(format!("field label not supported: {field}"));
            }
            terms.push((field, op != "!=", unescape(rhs)));
        }
        Ok(FieldSelector(terms))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `get` yields the value of a field label for the object.
    pub fn matches(&self, get: impl Fn(&str) -> String) -> bool {
        self.0.iter().all(|(f, eq, v)| (get(f) == *v) == *eq)
    }

    /// The value required for `field` by an `=` term, if any.
    pub fn required_value(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, eq, _)| f == field && *eq)
            .map(|(_, _, v)| v.as_str())
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push('\\');
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if escaped {
        cur.push('\\');
    }
    out.push(cur);
    out
}

fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    let bytes = term.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        for op in ["!=", "==", "="] {
            // Operators are ASCII, so a match starts on a char boundary.
            if bytes[i..].starts_with(op.as_bytes()) {
                return Some((&term[..i], op, &term[i + op.len()..]));
            }
        }
        i += 1;
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(sel: &str, labels: Value) -> bool {
        LabelSelector::parse(sel)
            .unwrap()
            .matches(labels.as_object())
    }

    #[test]
    fn label_forms() {
        let l = json!({"env": "prod", "tier": "web", "n": "5"});
        assert!(m("", l.clone()));
        assert!(m("env=prod", l.clone()));
        assert!(m("env==prod", l.clone()));
        assert!(!m("env!=prod", l.clone()));
        assert!(m("missing!=x", l.clone()));
        assert!(m("env in (prod, dev)", l.clone()));
        assert!(!m("env notin (prod,dev)", l.clone()));
        assert!(m("other notin (a)", l.clone()));
        assert!(m("env", l.clone()));
        assert!(m("!other", l.clone()));
        assert!(!m("!env", l.clone()));
        assert!(m("env=prod,tier=web", l.clone()));
        assert!(!m("env=prod,tier=db", l.clone()));
        assert!(m("n>4,n<6", l.clone()));
        assert!(m(
            "example.com/team in (a),!x",
            json!({"example.com/team": "a"})
        ));
        assert!(LabelSelector::parse("env in ()").is_err());
        assert!(LabelSelector::parse("env in (a").is_err());
        assert!(LabelSelector::parse("a b").is_err());
        assert!(LabelSelector::parse("env=prod,").is_err());
        assert!(LabelSelector::parse("bad key!=x").is_err());
        assert!(LabelSelector::parse("k=bad$value").is_err());
    }

    #[test]
    fn field_forms() {
        let f = FieldSelector::parse("metadata.name=a,type!=Opaque", &["metadata.name", "type"])
            .unwrap();
        assert!(f.matches(|k| if k == "type" { "x".into() } else { "a".into() }));
        assert!(!f.matches(|_| "Opaque".into()));
        assert_eq!(
            FieldSelector::parse("spec.x=1", &["metadata.name"]).unwrap_err(),
            "field label not supported: spec.x"
        );
        assert!(FieldSelector::parse("garbage", &["metadata.name"]).is_err());
        assert!(FieldSelector::parse("métadata.ñame=é", &["metadata.name"]).is_err());
        assert!(FieldSelector::parse("ñ", &["metadata.name"]).is_err());
        assert!(LabelSelector::parse("ñ=é").is_err());
        let f = FieldSelector::parse(r"metadata.name=a\,b", &["metadata.name"]).unwrap();
        assert_eq!(f.required_value("metadata.name"), Some("a,b"));
    }
}
