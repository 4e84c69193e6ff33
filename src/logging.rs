//! Logging: `LOG_CONFIG` (the Python tool's `logging.dictConfig` JSON) or `LOG_LEVEL` into a
//! [`log`] logger that writes text or JSON lines, and masks every registered credential.
//!
//! From a dictConfig file this reads what matters to a container's log stream: the root logger's
//! level (`root.level`, or the `""` entry of `loggers`), the stream of its first handler
//! (`ext://sys.stdout` or stderr, the default), and that handler's formatter: its `format`
//! string (`%(asctime)s %(levelname)s %(name)s %(message)s`, ...) and whether its class (`()` or
//! `class`) is a JSON formatter such as `pythonjsonlogger.jsonlogger.JsonFormatter`, in which case
//! each line is one JSON object with the fields the format string names.
//!
//! Levels: `TRACE`, `DEBUG`, `INFO`, `WARNING`/`WARN`, `ERROR`, `CRITICAL`/`FATAL` (as `ERROR`),
//! or Python's numbers (10, 20, ...). Times are UTC.

use std::io::Write;
use std::path::Path;

use log::{Level, LevelFilter, Log, Metadata, Record};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::config::ConfigError;
use crate::secret::scrub;

/// Python's default `basicConfig` format.
const DEFAULT_FORMAT: &str = "%(levelname)s:%(name)s:%(message)s";
/// The logger name shown for `%(name)s`.
const LOGGER_NAME: &str = "ecrupdater";

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error (Python's default).
    Stderr,
}

/// The logger's settings, read from `LOG_CONFIG` or `LOG_LEVEL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// The most verbose level written.
    pub level: LevelFilter,
    /// One JSON object per line instead of text.
    pub json: bool,
    /// The Python `%`-style format string.
    pub format: String,
    /// Where lines go.
    pub stream: Stream,
    /// Where the settings came from, for the first log line.
    pub source: String,
}

impl LogSettings {
    /// Reads `LOG_CONFIG` (default `./logging.json`) when that file exists, else `LOG_LEVEL`
    /// (default `INFO`). A file that exists but cannot be read or understood is an error.
    pub fn from_env(
        log_config: Option<&str>,
        log_level: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let path = log_config.unwrap_or("./logging.json");
        if Path::new(path).exists() {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::new("LOG_CONFIG", format!("cannot read {path}: {e}")))?;
            return Self::from_dict_config(&text)
                .map(|s| LogSettings {
                    source: format!("log configuration {path}"),
                    ..s
                })
                .map_err(|problem| ConfigError::new("LOG_CONFIG", format!("{path}: {problem}")));
        }
        let level_text = log_level.unwrap_or("INFO");
        let level = parse_level(level_text).ok_or_else(|| {
            ConfigError::new(
                "LOG_LEVEL",
                format!("unknown level {level_text:?} (TRACE, DEBUG, INFO, WARNING, ERROR)"),
            )
        })?;
        let source = match log_config {
            Some(p) => format!("LOG_LEVEL (LOG_CONFIG file {p} does not exist)"),
            None => "LOG_LEVEL".to_string(),
        };
        Ok(LogSettings {
            level,
            json: false,
            format: DEFAULT_FORMAT.to_string(),
            stream: Stream::Stderr,
            source,
        })
    }

    /// Reads a Python `logging.dictConfig` document. Returns what is wrong, in a few words.
    pub fn from_dict_config(text: &str) -> Result<Self, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let doc = doc.as_object().ok_or("not a JSON object")?;
        let root = doc
            .get("root")
            .or_else(|| doc.get("loggers").and_then(|l| l.get("")))
            .and_then(Value::as_object);
        let level = match root.and_then(|r| r.get("level")) {
            None => LevelFilter::Warn, // Python's root logger default
            Some(v) => {
                level_from_json(v).ok_or_else(|| format!("root level {v} is not a level"))?
            }
        };
        let handler_name = root
            .and_then(|r| r.get("handlers"))
            .and_then(Value::as_array)
            .and_then(|h| h.first())
            .and_then(Value::as_str);
        let handler = handler_name.and_then(|name| doc.get("handlers")?.get(name));
        if let (Some(name), None) = (handler_name, handler) {
            return Err(format!(
                "root handler {name:?} is not defined under handlers"
            ));
        }
        let stream = match handler
            .and_then(|h| h.get("stream"))
            .and_then(Value::as_str)
        {
            Some(s) if s.ends_with("stdout") => Stream::Stdout,
            _ => Stream::Stderr,
        };
        let formatter_name = handler
            .and_then(|h| h.get("formatter"))
            .and_then(Value::as_str);
        let formatter = formatter_name.and_then(|name| doc.get("formatters")?.get(name));
        if let (Some(name), None) = (formatter_name, formatter) {
            return Err(format!(
                "formatter {name:?} is not defined under formatters"
            ));
        }
        let class = formatter
            .and_then(|f| f.get("()").or_else(|| f.get("class")))
            .and_then(Value::as_str)
            .unwrap_or("logging.Formatter");
        let format = formatter
            .and_then(|f| f.get("format").or_else(|| f.get("fmt")))
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_FORMAT)
            .to_string();
        Ok(LogSettings {
            level,
            json: class.to_ascii_lowercase().contains("json"),
            format,
            stream,
            source: String::new(),
        })
    }
}

/// A level name or Python level number.
pub fn parse_level(text: &str) -> Option<LevelFilter> {
    match text.trim().to_ascii_uppercase().as_str() {
        "TRACE" | "5" => Some(LevelFilter::Trace),
        "DEBUG" | "10" => Some(LevelFilter::Debug),
        "INFO" | "20" => Some(LevelFilter::Info),
        "WARNING" | "WARN" | "30" => Some(LevelFilter::Warn),
        "ERROR" | "40" | "CRITICAL" | "FATAL" | "50" => Some(LevelFilter::Error),
        "OFF" | "NOTSET" => Some(LevelFilter::Off),
        _ => None,
    }
}

fn level_from_json(v: &Value) -> Option<LevelFilter> {
    match v {
        Value::String(s) => parse_level(s),
        Value::Number(n) => parse_level(&n.to_string()),
        _ => None,
    }
}

/// Python's names for the levels.
fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "ERROR",
        Level::Warn => "WARNING",
        Level::Info => "INFO",
        Level::Debug => "DEBUG",
        Level::Trace => "TRACE",
    }
}

/// Python's `asctime`: `2024-01-31 12:00:00,123`, in UTC.
fn asctime(now: OffsetDateTime) -> String {
    let format =
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second],[subsecond digits:3]");
    now.format(&format).unwrap_or_default()
}

/// The value of one `%(field)` for a record.
fn field(name: &str, level: Level, message: &str, module: &str, now: OffsetDateTime) -> Value {
    match name {
        "asctime" => Value::String(asctime(now)),
        "levelname" => Value::String(level_name(level).to_string()),
        "levelno" => Value::from(match level {
            Level::Error => 40,
            Level::Warn => 30,
            Level::Info => 20,
            Level::Debug => 10,
            Level::Trace => 5,
        }),
        "message" | "msg" => Value::String(message.to_string()),
        "name" => Value::String(LOGGER_NAME.to_string()),
        "module" | "funcName" | "pathname" | "filename" => Value::String(module.to_string()),
        "created" => Value::from(now.unix_timestamp_nanos() as f64 / 1e9),
        "process" => Value::from(std::process::id()),
        "thread" | "threadName" => Value::String(
            std::thread::current()
                .name()
                .unwrap_or("thread")
                .to_string(),
        ),
        _ => Value::Null,
    }
}

/// The `%(name)x` fields of a format string, in order.
fn format_fields(format: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = format;
    while let Some(start) = rest.find("%(") {
        let after = &rest[start + 2..];
        let Some(end) = after.find(')') else { break };
        out.push(after[..end].to_string());
        rest = &after[end + 1..];
    }
    out
}

/// Renders one line (without the newline) for the given settings.
pub fn render(
    settings: &LogSettings,
    level: Level,
    message: &str,
    module: &str,
    now: OffsetDateTime,
) -> String {
    if settings.json {
        let mut obj = Map::new();
        let mut fields = format_fields(&settings.format);
        if !fields.iter().any(|f| f == "message") {
            fields.push("message".to_string());
        }
        for name in fields {
            obj.insert(name.clone(), field(&name, level, message, module, now));
        }
        return Value::Object(obj).to_string();
    }
    // Text: substitute every %(name)<conversion> by its value; `%%` is a literal percent sign.
    let mut out = String::with_capacity(settings.format.len() + message.len());
    let mut rest = settings.format.as_str();
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        if let Some(stripped) = after.strip_prefix('%') {
            out.push('%');
            rest = stripped;
            continue;
        }
        let Some(inner) = after.strip_prefix('(') else {
            out.push('%');
            rest = after;
            continue;
        };
        let Some(end) = inner.find(')') else {
            out.push('%');
            rest = after;
            continue;
        };
        let value = field(&inner[..end], level, message, module, now);
        match value {
            Value::String(s) => out.push_str(&s),
            other => out.push_str(&other.to_string()),
        }
        // Skip the conversion spec: flags, width, precision, then one letter (s, d, f, ...).
        let spec = &inner[end + 1..];
        let spec_len = spec
            .find(|c: char| c.is_ascii_alphabetic())
            .map(|i| i + 1)
            .unwrap_or(0);
        rest = &spec[spec_len..];
    }
    out.push_str(rest);
    out
}

/// The process-wide logger.
struct Logger {
    settings: LogSettings,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.settings.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // Only this crate's records: dependencies (rustls, ureq) log at TRACE with content we do not control.
        let module = record.module_path().unwrap_or("");
        if !module.starts_with("ecrupdater") && !module.starts_with("k8s_ecrupdater") {
            return;
        }
        let message = record.args().to_string();
        let message = scrub(&message);
        let module = module.rsplit("::").next().unwrap_or(module);
        let mut line = render(
            &self.settings,
            record.level(),
            &message,
            module,
            OffsetDateTime::now_utc(),
        );
        line.push('\n');
        // A closed stream must not kill the daemon: losing a log line is the lesser harm.
        let _ = match self.settings.stream {
            Stream::Stdout => std::io::stdout().lock().write_all(line.as_bytes()),
            Stream::Stderr => std::io::stderr().lock().write_all(line.as_bytes()),
        };
    }

    fn flush(&self) {
        let _ = std::io::stdout().flush();
    }
}

/// Installs the logger. Call once, early; a second call is ignored.
pub fn init(settings: LogSettings) {
    let level = settings.level;
    if log::set_boxed_logger(Box::new(Logger { settings })).is_ok() {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const PYTHON_JSON: &str = r#"{
      "version": 1,
      "disable_existing_loggers": false,
      "formatters": {"json": {"()": "pythonjsonlogger.jsonlogger.JsonFormatter",
                              "format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
      "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json",
                               "stream": "ext://sys.stdout"}},
      "root": {"level": "DEBUG", "handlers": ["console"]}
    }"#;

    #[test]
    fn reads_the_python_tools_json_config() {
        let s = LogSettings::from_dict_config(PYTHON_JSON).expect("valid");
        assert_eq!(s.level, LevelFilter::Debug);
        assert!(s.json);
        assert_eq!(s.stream, Stream::Stdout);
        let line = render(
            &s,
            Level::Info,
            "hello \"x\"",
            "refresh",
            datetime!(2024-01-31 12:00:00.123 UTC),
        );
        let v: Value = serde_json::from_str(&line).expect("one JSON object");
        assert_eq!(v["asctime"], "2024-01-31 12:00:00,123");
        assert_eq!(v["levelname"], "INFO");
        assert_eq!(v["name"], "ecrupdater");
        assert_eq!(v["message"], "hello \"x\"");
    }

    #[test]
    fn text_format_follows_the_format_string() {
        let s = LogSettings::from_dict_config(
            r#"{"version":1,"formatters":{"f":{"format":"%(asctime)s [%(levelname)-8s] %(message)s 100%%"}},
               "handlers":{"h":{"class":"logging.StreamHandler","formatter":"f"}},
               "loggers":{"":{"level":"WARNING","handlers":["h"]}}}"#,
        )
        .expect("valid");
        assert_eq!(s.level, LevelFilter::Warn);
        assert!(!s.json);
        assert_eq!(s.stream, Stream::Stderr);
        let line = render(
            &s,
            Level::Warn,
            "careful",
            "m",
            datetime!(2024-01-31 12:00:00 UTC),
        );
        assert_eq!(line, "2024-01-31 12:00:00,000 [WARNING] careful 100%");
    }

    #[test]
    fn bad_documents_say_what_is_wrong() {
        assert!(
            LogSettings::from_dict_config("{")
                .expect_err("bad")
                .contains("not valid JSON")
        );
        assert!(
            LogSettings::from_dict_config(r#"{"root":{"level":"LOUD"}}"#)
                .expect_err("bad level")
                .contains("LOUD")
        );
        assert!(
            LogSettings::from_dict_config(r#"{"root":{"level":"INFO","handlers":["nope"]}}"#)
                .expect_err("bad handler")
                .contains("nope")
        );
    }

    #[test]
    fn missing_file_falls_back_to_log_level() {
        let s =
            LogSettings::from_env(Some("/nonexistent/logging.json"), Some("trace")).expect("valid");
        assert_eq!(s.level, LevelFilter::Trace);
        assert!(!s.json);
        let err = LogSettings::from_env(Some("/nonexistent/logging.json"), Some("LOUD"))
            .expect_err("bad");
        assert_eq!(err.name, "LOG_LEVEL");
    }

    #[test]
    fn unreadable_config_is_a_config_error() {
        let dir = std::env::temp_dir().join(format!("ecrupdater-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("logging.json");
        std::fs::write(&path, "not json").expect("write");
        let err = LogSettings::from_env(path.to_str(), None).expect_err("invalid");
        assert_eq!(err.name, "LOG_CONFIG");
        assert!(err.problem.contains("not valid JSON"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
