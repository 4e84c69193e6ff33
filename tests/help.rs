//! `--help` is the only documentation a pod has (the image holds the binary alone): it must list
//! every setting the daemon reads, with its default, and point at no file. The list of settings
//! is read from the source itself, so a new variable without a line in `--help` fails here.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// The part of a source file before its `#[cfg(test)]` module (tests read made-up variables).
fn non_test_source(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read source");
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether `s` looks like an environment variable's name: upper-case letters, digits and `_`.
fn variable_like(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Every string literal of `text` with the text just before it.
fn literals(text: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(open) = rest.find('"') {
        let start = offset + open + 1;
        let Some(len) = text[start..].find('"') else {
            break;
        };
        out.push((&text[..start - 1], &text[start..start + len]));
        offset = start + len + 1;
        rest = &text[offset..];
    }
    out
}

/// The environment variables the crate reads, from its source: every `.get("NAME")` and
/// `env::var("NAME")` outside the test modules, and in src/config (the one module that reads the
/// environment) every literal shaped like `NAME_WITH_UNDERSCORES` (it passes names to helpers).
fn variables_in_source() -> BTreeSet<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut names = BTreeSet::new();
    for file in files {
        let in_config = file.starts_with(src.join("config"));
        let text = non_test_source(&file);
        for (before, literal) in literals(&text) {
            if !variable_like(literal) {
                continue;
            }
            let called = [".get(", "env::var(", "env::var_os("]
                .iter()
                .any(|call| before.ends_with(call));
            if called || (in_config && literal.contains('_')) {
                names.insert(literal.to_string());
            }
        }
    }
    names
}

fn help() -> String {
    let run = run(&[], &["--help"], Duration::from_secs(10));
    assert_eq!(run.status, 0, "--help exits 0: {}", run.output());
    assert!(run.stderr.is_empty(), "--help prints to stdout only");
    run.stdout
}

/// Whether `name` appears in `text` as a whole word (not only inside a longer name).
fn mentions(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        !word(before) && !word(after)
    })
}

#[test]
fn help_lists_every_variable_the_source_reads() {
    let names = variables_in_source();
    // The scan must find the settings it is meant to: if it found none, nothing would be checked.
    for known in [
        "K8S_PULL_SECRET_NAME",
        "ECR_UPDATE_INTERVAL",
        "AWS_SECRET_ACCESS_KEY",
        "LOG_LEVEL",
        "LOG_CONFIG",
        "HOME",
    ] {
        assert!(names.contains(known), "the scan misses {known}: {names:?}");
    }
    assert!(
        names.len() >= 40,
        "only {} variables found: {names:?}",
        names.len()
    );
    let help = help();
    let missing: Vec<&String> = names.iter().filter(|n| !mentions(&help, n)).collect();
    assert!(
        missing.is_empty(),
        "--help does not mention {missing:?}:\n{help}"
    );
    // The proxy variables are read by ureq (`Proxy::try_from_env`), not by our source.
    for proxy in ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"] {
        assert!(mentions(&help, proxy), "--help does not mention {proxy}");
    }
}

#[test]
fn help_gives_defaults_and_refers_to_no_file_the_image_lacks() {
    let help = help();
    assert!(!help.contains("README"), "the image has no README: {help}");
    for default in [
        "(default 3600)",
        "(default false)",
        "http://localhost:8001",
        "(default 0.0.0.0:8080)",
        "(default 5)",
        "(default 30)",
        "(default INFO)",
        "(default ./logging.json)",
        "(default /var/run/secrets/kubernetes.io/serviceaccount)",
    ] {
        assert!(help.contains(default), "no {default:?} in --help:\n{help}");
    }
    // Every setting line (two spaces, then a name) is followed, before the next setting, by its
    // default or by "required".
    let mut blocks: Vec<String> = Vec::new();
    for line in help.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if indent == 2 && trimmed.starts_with(|c: char| c.is_ascii_uppercase()) {
            blocks.push(line.to_string());
        } else if indent > 2
            && let Some(block) = blocks.last_mut()
        {
            block.push_str(line);
        }
    }
    assert!(
        blocks.len() >= 25,
        "{} setting lines:\n{help}",
        blocks.len()
    );
    for block in blocks {
        assert!(
            block.contains("default") || block.contains("required") || block.contains("set by"),
            "a setting without its default: {block}"
        );
    }
}
