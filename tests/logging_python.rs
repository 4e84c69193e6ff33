//! `logging.json` means what Python makes it mean: the same dictConfig files go to Python's own
//! `logging.config.dictConfig` (a python3 subprocess logging one record at each level through
//! the `ecrupdater` logger) and to the daemon's logger, and the lines they write, or their
//! refusal, must be the same. Then the real binary: `LOG_LEVEL` names and numbers (NOTSET and 0
//! write everything; ERROR, CRITICAL; OFF refused), numeric dictConfig levels, the start line
//! saying `LOG_LEVEL ignored: using ./logging.json`, and `LOG_CONFIG` that is a device or a FIFO
//! refused within a second with exit status 2.
//!
//! The side-by-side test needs python3 (any 3.x, its standard library only), which every
//! machine that runs this project's tests has (the test script and the rendering tests use it);
//! the binary tests need nothing but the fakes.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ecrupdater::logging::{LogSettings, TRACE};
use time::OffsetDateTime;

use common::fake::*;
use common::*;

/// The levels the daemon's records carry (TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL).
const LEVELS: [i64; 6] = [TRACE, 10, 20, 30, 40, 50];

/// Python's side: configure from the file, then one record per level through `ecrupdater`.
const PYTHON: &str = r#"
import json, logging, logging.config, sys
logging.addLevelName(5, "TRACE")
try:
    with open(sys.argv[1]) as f:
        logging.config.dictConfig(json.load(f))
except (ValueError, TypeError) as e:
    print("REFUSED")
    sys.exit(0)
log = logging.getLogger("ecrupdater")
for level in (5, 10, 20, 30, 40, 50):
    log.log(level, "record at %d", level)
"#;

/// A dictConfig document writing Python's default text format to stdout, with `root` and
/// `extra` (more top-level keys, or nothing) spliced in.
fn document(root: &str, extra: &str) -> String {
    format!(
        r#"{{"version": 1, "disable_existing_loggers": false,
  "formatters": {{"plain": {{"format": "%(levelname)s:%(name)s:%(message)s"}}}},
  "handlers": {{"out": {{"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stdout"{handler}}}}},
  "root": {{"handlers": ["out"]{root}}}{extra}}}"#,
        handler = if extra.contains("HANDLER_WARNING") {
            r#", "level": "WARNING""#
        } else {
            ""
        },
        extra = extra.replace("HANDLER_WARNING", ""),
    )
}

fn cases() -> Vec<(String, String)> {
    let mut cases = Vec::new();
    for level in [
        r#""NOTSET""#,
        r#""TRACE""#,
        r#""DEBUG""#,
        r#""INFO""#,
        r#""WARNING""#,
        r#""WARN""#,
        r#""ERROR""#,
        r#""CRITICAL""#,
        r#""FATAL""#,
        "0",
        "1",
        "5",
        "10",
        "15",
        "20",
        "25",
        "30",
        "40",
        "45",
        "50",
        "51",
        "100",
        "-7",
        "true",
        // Python refuses these: lower-case names, numbers as text, floats, made-up names.
        r#""info""#,
        r#""Debug""#,
        r#""20""#,
        "20.5",
        r#""LOUD""#,
        r#""OFF""#,
        "null",
    ] {
        cases.push((
            format!("root level {level}"),
            document(&format!(r#", "level": {level}"#), ""),
        ));
    }
    cases.push(("no root level (Python: WARNING)".into(), document("", "")));
    cases.push((
        r#"loggers[""] DEBUG, root without a level"#.into(),
        document("", r#", "loggers": {"": {"level": "DEBUG"}}"#),
    ));
    cases.push((
        r#"loggers[""] DEBUG, root level null"#.into(),
        document(
            r#", "level": null"#,
            r#", "loggers": {"": {"level": "DEBUG"}}"#,
        ),
    ));
    cases.push((
        r#"root ERROR wins over loggers[""] DEBUG"#.into(),
        document(
            r#", "level": "ERROR""#,
            r#", "loggers": {"": {"level": "DEBUG"}}"#,
        ),
    ));
    cases.push((
        "ecrupdater logger ERROR under root DEBUG".into(),
        document(
            r#", "level": "DEBUG""#,
            r#", "loggers": {"ecrupdater": {"level": "ERROR"}}"#,
        ),
    ));
    cases.push((
        "ecrupdater logger 15 under root CRITICAL".into(),
        document(
            r#", "level": "CRITICAL""#,
            r#", "loggers": {"ecrupdater": {"level": 15}}"#,
        ),
    ));
    cases.push((
        "ecrupdater logger NOTSET defers to root ERROR".into(),
        document(
            r#", "level": "ERROR""#,
            r#", "loggers": {"ecrupdater": {"level": "NOTSET"}}"#,
        ),
    ));
    cases.push((
        "handler WARNING under root NOTSET".into(),
        document(r#", "level": "NOTSET""#, "HANDLER_WARNING"),
    ));
    cases
}

/// The daemon's side: the same file through its logger's own line writer.
fn daemon_lines(path: &Path) -> String {
    let settings = match LogSettings::from_env(path.to_str(), None) {
        Ok(s) => s,
        Err(_) => return "REFUSED\n".to_string(),
    };
    LEVELS
        .iter()
        .filter_map(|&level| {
            settings.line(
                level,
                &format!("record at {level}"),
                0,
                "test",
                OffsetDateTime::now_utc(),
            )
        })
        .collect()
}

#[test]
fn dict_config_levels_print_exactly_what_python_prints() {
    let dir = temp_dir("logging-python");
    let mut compared = 0;
    let mut differences = Vec::new();
    for (i, (what, doc)) in cases().into_iter().enumerate() {
        let path = dir.join(format!("logging-{i}.json"));
        std::fs::write(&path, &doc).expect("write the file");
        let python = python_lines(&path);
        let daemon = daemon_lines(&path);
        if python != daemon {
            differences.push(format!(
                "{what}:\n  python: {python:?}\n  daemon: {daemon:?}"
            ));
        }
        compared += 1;
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    assert!(compared >= 38, "{compared}");
}

/// Runs Python's side on the document at `path`: what it prints.
fn python_lines(path: &Path) -> String {
    let out = Command::new("python3")
        .args(["-c", PYTHON])
        .arg(path)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python3 failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn text_formats_with_flags_widths_and_precisions_print_what_python_prints() {
    // The fields whose values the two sides share (the time, process and thread differ).
    let formats = [
        "%(levelname)-8s %(name)s: %(message)s",
        "[%(levelname)10s] %(message).9s|",
        "%(levelno)03d %(levelno)-4d| %(levelno)+d %(levelno) d %(levelname)-7.3s %(message)s",
        "%(levelno)x %(levelno)#X %(levelno)#06o %(levelno)+05d %(levelno).2f %(levelno)08.3f",
        "%(name).3s%(name)-12s|%(name)12.5s|%(message)s 100%% done",
    ];
    let dir = temp_dir("logging-python-formats");
    let mut differences = Vec::new();
    for (i, format) in formats.iter().enumerate() {
        let doc = document("", "").replace("%(levelname)s:%(name)s:%(message)s", format);
        let doc = doc.replacen(
            r#""handlers": ["out"]"#,
            r#""handlers": ["out"], "level": "NOTSET""#,
            1,
        );
        let path = dir.join(format!("format-{i}.json"));
        std::fs::write(&path, &doc).expect("write the file");
        let python = python_lines(&path);
        let daemon = daemon_lines(&path);
        assert_eq!(python.lines().count(), LEVELS.len(), "{format}: {python}");
        if python != daemon {
            differences.push(format!(
                "{format}:\n  python: {python:?}\n  daemon: {daemon:?}"
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

fn levels_of(output: &str) -> Vec<&str> {
    let mut levels: Vec<&str> = output
        .lines()
        .filter_map(|l| l.split_once(':').map(|(level, _)| level))
        .collect();
    levels.sort();
    levels.dedup();
    levels
}

/// A one-shot run against a fake API server that holds one namespace and a fake ECR, with
/// `vars` added; `fail`: the API answers 403 to everything, so the run ends with status 1.
fn once(vars: &[(&str, &str)], fail: bool) -> Finished {
    let kube = kube_with_shipped_rbac();
    kube.add_namespace("team-a", &[]);
    let (ecr, _) = fake_ecr_with("logging-python-ecr-password-0123456789");
    let forbidden = TinyServer::start(|_| {
        (
            403,
            "application/json",
            r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"namespaces is forbidden: User \"system:serviceaccount:ecr-updater:ecr-updater\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope","reason":"Forbidden","code":403}"#.to_string(),
        )
    });
    let kube_url = if fail {
        forbidden.url()
    } else {
        kube.base_url()
    };
    let ecr_url = ecr.base_url();
    let mut all = vec![
        ("K8S_PULL_SECRET_NAME", "ecr-pull"),
        ("ECR_CREATE_MISSING", "true"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ENDPOINT_URL_ECR", ecr_url.as_str()),
        ("AWS_ACCESS_KEY_ID", "AKIALOGGINGPYTHON1"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "logging/python+secret/key0123456789abcd",
        ),
        ("KUBERNETES_API_ENDPOINT", kube_url.as_str()),
    ];
    all.extend_from_slice(vars);
    run(&all, &["--once"], Duration::from_secs(60))
}

#[test]
fn log_level_names_and_numbers_through_the_binary() {
    // NOTSET and 0: everything (Python's root at NOTSET), TRACE included.
    for level in ["NOTSET", "0"] {
        let out = once(&[("LOG_LEVEL", level)], false);
        assert_eq!(out.status, 0, "{}", out.output());
        let levels = levels_of(&out.stderr);
        for wanted in ["DEBUG", "INFO", "TRACE"] {
            assert!(
                levels.contains(&wanted),
                "LOG_LEVEL={level}: {levels:?}\n{}",
                out.stderr
            );
        }
    }
    // ERROR: the errors, nothing below.
    let out = once(&[("LOG_LEVEL", "ERROR")], true);
    assert_eq!(out.status, 1, "{}", out.output());
    let levels = levels_of(&out.stderr);
    assert!(levels.contains(&"ERROR"), "{}", out.stderr);
    assert!(
        levels.iter().all(|l| matches!(*l, "ERROR" | "CRITICAL")),
        "{levels:?}"
    );
    // CRITICAL: only the line that says why the process ends.
    let out = once(&[("LOG_LEVEL", "CRITICAL")], true);
    assert_eq!(out.status, 1, "{}", out.output());
    assert_eq!(out.stderr, "CRITICAL:ecrupdater:exiting with status 1\n");
    let out = once(&[("LOG_LEVEL", "critical")], false);
    assert_eq!(
        (out.status, out.stderr.as_str()),
        (0, ""),
        "a success at CRITICAL says nothing"
    );
    // OFF is not a Python level: refused before anything runs, naming the variable.
    let started = Instant::now();
    let out = once(&[("LOG_LEVEL", "OFF")], false);
    assert_eq!(out.status, 2, "{}", out.output());
    assert!(
        out.stderr.contains("LOG_LEVEL") && out.stderr.contains("CRITICAL"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn numeric_dict_config_levels_through_the_binary() {
    let dir = temp_dir("logging-numeric");
    let path = dir.join("logging.json");
    let path_text = path.to_str().expect("utf-8 path");
    // 40: errors only; 25: WARNING and above; 15: INFO and above, no DEBUG.
    std::fs::write(&path, document(r#", "level": 40"#, "")).expect("write");
    let out = once(&[("LOG_CONFIG", path_text)], true);
    assert_eq!(out.status, 1, "{}", out.output());
    let levels = levels_of(&out.stdout);
    assert!(levels.contains(&"ERROR"), "{}", out.output());
    assert!(
        levels.iter().all(|l| matches!(*l, "ERROR" | "CRITICAL")),
        "{levels:?}"
    );
    std::fs::write(&path, document(r#", "level": 15"#, "")).expect("write");
    let out = once(&[("LOG_CONFIG", path_text), ("LOG_LEVEL", "TRACE")], false);
    assert_eq!(out.status, 0, "{}", out.output());
    let levels = levels_of(&out.stdout);
    assert!(levels.contains(&"INFO"), "{}", out.output());
    assert!(
        !levels.contains(&"DEBUG") && !levels.contains(&"TRACE"),
        "{levels:?}"
    );
    // LOG_LEVEL was given and ignored: the start line says so.
    assert!(
        out.stdout
            .contains(&format!("LOG_LEVEL ignored: using {path_text}")),
        "{}",
        out.stdout
    );
}

#[test]
fn log_level_is_ignored_with_a_logging_json_in_the_working_directory_and_the_start_line_says_so() {
    let dir = temp_dir("logging-cwd");
    std::fs::write(
        dir.join("logging.json"),
        document(r#", "level": "INFO""#, ""),
    )
    .expect("write");
    let kube = kube_with_shipped_rbac();
    let (ecr, _) = fake_ecr_with("logging-cwd-ecr-password-0123456789abc");
    let (kube_url, ecr_url) = (kube.base_url(), ecr.base_url());
    let out = command(
        &[
            ("K8S_PULL_SECRET_NAME", "ecr-pull"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL_ECR", ecr_url.as_str()),
            ("AWS_ACCESS_KEY_ID", "AKIALOGGINGCWD0001"),
            (
                "AWS_SECRET_ACCESS_KEY",
                "logging/cwd+secret/key0123456789abcdefg",
            ),
            ("KUBERNETES_API_ENDPOINT", kube_url.as_str()),
            ("LOG_LEVEL", "DEBUG"),
        ],
        &["--once"],
    )
    .env_remove("LOG_CONFIG")
    .current_dir(&dir)
    .output()
    .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let start = stdout
        .lines()
        .find(|l| l.contains(" starting: "))
        .expect("a start line");
    assert!(
        start.contains("LOG_LEVEL ignored: using ./logging.json"),
        "{start}"
    );
    assert!(!stdout.contains("DEBUG:"), "{stdout}");
}

#[test]
fn log_config_that_is_a_device_or_a_fifo_is_refused_within_a_second() {
    let dir = temp_dir("logging-fifo");
    let fifo = dir.join("logging.json");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo");
    for (path, kind) in [
        ("/dev/zero", "character device"),
        (fifo.to_str().expect("path"), "FIFO"),
    ] {
        let started = Instant::now();
        let out = run(
            &[("LOG_CONFIG", path), ("K8S_PULL_SECRET_NAME", "ecr-pull")],
            &["--once"],
            Duration::from_secs(10),
        );
        let took = started.elapsed();
        assert_eq!(out.status, 2, "{path}: {}", out.output());
        assert!(took < Duration::from_secs(1), "{path}: {took:?}");
        assert!(
            out.stderr.contains("LOG_CONFIG") && out.stderr.contains(kind),
            "{path}: {}",
            out.stderr
        );
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    }
}
