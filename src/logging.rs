//! Logging: `LOG_CONFIG` (the Python tool's `logging.dictConfig` JSON) or `LOG_LEVEL` into a
//! [`log`] logger that writes text or JSON lines, every line masked, escaped and bounded.
//!
//! From a dictConfig file this reads what matters to a container's log stream: the root logger's
//! level (`root.level`, else the `""` entry of `loggers`; the `ecrupdater` logger's own level when
//! set), the stream and level of the root's first handler (`ext://sys.stdout` or stderr, the
//! default), and that handler's formatter: its `format` string (`%(asctime)s %(levelname)s
//! %(name)s %(message)s`, ...) and whether its class (`()` or `class`) is a JSON formatter such as
//! `pythonjsonlogger.jsonlogger.JsonFormatter`, in which case each line is one JSON object with
//! the fields the format string names (and `message` always).
//!
//! Levels are Python's (`logging._checkLevel`): `NOTSET` 0, `DEBUG` 10, `INFO` 20, `WARNING`/`WARN`
//! 30, `ERROR` 40, `CRITICAL`/`FATAL` 50, or any integer; a record is written when its number is at
//! least the logger's and the handler's level, so `NOTSET` on the root writes everything. `TRACE`
//! (5) is the one addition. In a dictConfig file names are upper-case and numbers are JSON
//! integers, as Python requires; `LOG_LEVEL` also takes lower-case names and numbers as text.
//! Times are UTC.
//!
//! Every line, whatever its source: the message is masked first ([`crate::sensitive::mask`]: every
//! credential, and every piece of 16 characters of one), its control characters are escaped
//! (`\n`, `\u{1b}`, ...) so that outside text cannot forge a line, and then it is cut so that
//! no line is longer than [`MAX_LINE`] bytes.
//!
//! `LOG_CONFIG` must be a regular file of at most [`MAX_CONFIG_BYTES`]: a device, a FIFO or a
//! directory is refused before it is opened.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{Read, Write};

use log::{Level, LevelFilter, Log, Metadata, Record};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::config::ConfigError;
use crate::sensitive::{WINDOW, mask};

/// Python's default `basicConfig` format.
const DEFAULT_FORMAT: &str = "%(levelname)s:%(name)s:%(message)s";
/// The logger name shown for `%(name)s`.
const LOGGER_NAME: &str = "ecrupdater";
/// The longest line written, its newline included.
pub const MAX_LINE: usize = 4096;
/// The largest `LOG_CONFIG` file read.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// How much of one formatted message is kept before masking (the line keeps far less).
const MAX_FORMATTED: usize = 256 * 1024;
/// Room kept in a line for the note that says it was cut.
const CUT_NOTE_ROOM: usize = 48;
/// The `log` target that makes a record CRITICAL (50): `log::error!(target: CRITICAL, ...)`.
pub const CRITICAL: &str = "ecrupdater::critical";

/// Python's level numbers, and TRACE.
pub const NOTSET: i64 = 0;
/// TRACE, the one level Python does not define.
pub const TRACE: i64 = 5;
/// Python's DEBUG.
pub const DEBUG: i64 = 10;
/// Python's INFO.
pub const INFO: i64 = 20;
/// Python's WARNING (WARN).
pub const WARNING: i64 = 30;
/// Python's ERROR.
pub const ERROR: i64 = 40;
/// Python's CRITICAL (FATAL).
pub const CRITICAL_LEVEL: i64 = 50;

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
    /// Python's level number: records at this level or above are written (0: every record).
    pub threshold: i64,
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
    /// (default `INFO`). A file that exists but is not a regular file of at most 1 MiB, or cannot
    /// be read or understood, is an error. With the file, `LOG_LEVEL` is ignored (the Python
    /// tool's precedence), and `source` says so.
    pub fn from_env(
        log_config: Option<&str>,
        log_level: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let path = log_config.unwrap_or("./logging.json");
        if let Some(text) = read_config_file(path)? {
            let settings = Self::from_dict_config(&text)
                .map_err(|problem| ConfigError::new("LOG_CONFIG", format!("{path}: {problem}")))?;
            let mut source = format!("log configuration {path}");
            if log_level.is_some() {
                let _ = write!(source, " (LOG_LEVEL ignored: using {path})");
            }
            return Ok(LogSettings { source, ..settings });
        }
        let level_text = log_level.unwrap_or("INFO");
        let threshold =
            parse_level(level_text).map_err(|problem| ConfigError::new("LOG_LEVEL", problem))?;
        let source = match log_config {
            Some(p) => format!("LOG_LEVEL (LOG_CONFIG file {p} does not exist)"),
            None => "LOG_LEVEL".to_string(),
        };
        Ok(LogSettings {
            threshold,
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
        let loggers = doc.get("loggers").and_then(Value::as_object);
        // Python configures `loggers` first (`""` is the root), then `root`: each key of `root`
        // wins over the same key of `loggers[""]`, and a key neither sets keeps its default.
        // A `null` or empty value is no value (Python: `if level is not None`, `if handlers`).
        let set = |v: &&Value| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty());
        let root_key = |key: &str| -> Option<&Value> {
            doc.get("root")
                .and_then(|r| r.get(key))
                .filter(set)
                .or_else(|| loggers.and_then(|l| l.get(""))?.get(key).filter(set))
        };
        let root_level = match root_key("level") {
            None => WARNING, // Python's root logger default
            Some(v) => level_from_json(v).map_err(|p| format!("root level: {p}"))?,
        };
        // The `ecrupdater` logger's own level, when set and not NOTSET (which defers to the root).
        let own_level = match loggers
            .and_then(|l| l.get(LOGGER_NAME))
            .and_then(|l| l.get("level"))
            .filter(|v| !v.is_null())
        {
            None => None,
            Some(v) => Some(level_from_json(v).map_err(|p| format!("{LOGGER_NAME} level: {p}"))?),
        };
        let logger_level = own_level.filter(|&l| l != NOTSET).unwrap_or(root_level);
        let handler_name = root_key("handlers")
            .and_then(Value::as_array)
            .and_then(|h| h.first())
            .and_then(Value::as_str);
        let handler = handler_name.and_then(|name| doc.get("handlers")?.get(name));
        if let (Some(name), None) = (handler_name, handler) {
            return Err(format!(
                "root handler {name:?} is not defined under handlers"
            ));
        }
        let handler_level = match handler
            .and_then(|h| h.get("level"))
            .filter(|v| !v.is_null())
        {
            None => NOTSET,
            Some(v) => level_from_json(v).map_err(|p| format!("handler level: {p}"))?,
        };
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
            threshold: logger_level.max(handler_level),
            json: class.to_ascii_lowercase().contains("json"),
            format,
            stream,
            source: String::new(),
        })
    }

    /// Whether a record of Python level number `levelno` is written.
    pub fn enabled(&self, levelno: i64) -> bool {
        levelno >= self.threshold
    }

    /// The most verbose `log` level that can be written (for `log::set_max_level`).
    pub fn level_filter(&self) -> LevelFilter {
        match self.threshold {
            t if t <= TRACE => LevelFilter::Trace,
            t if t <= DEBUG => LevelFilter::Debug,
            t if t <= INFO => LevelFilter::Info,
            t if t <= WARNING => LevelFilter::Warn,
            t if t <= CRITICAL_LEVEL => LevelFilter::Error,
            _ => LevelFilter::Off,
        }
    }

    /// The whole line (newline included) for a record at `levelno` with `message`, or `None`
    /// when that level is not written: masked, escaped, at most [`MAX_LINE`] bytes.
    /// `dropped`: how many bytes of the message were already left out after `message`.
    pub fn line(
        &self,
        levelno: i64,
        message: &str,
        dropped: usize,
        module: &str,
        now: OffsetDateTime,
    ) -> Option<String> {
        if !self.enabled(levelno) {
            return None;
        }
        let base = render(self, levelno, "", module, now).len();
        let budget = MAX_LINE.saturating_sub(base + 1);
        let mut message = clean_cut(message, budget, dropped);
        let mut line = render(self, levelno, &message, module, now);
        // JSON escaping (or a format naming the message twice) can still make it too long: what
        // the message costs in the line is then more than its length, so it is cut in proportion.
        for _ in 0..4 {
            if line.len() < MAX_LINE || message.is_empty() {
                break;
            }
            let cost = line.len().saturating_sub(base).max(1);
            let room = budget.saturating_sub(CUT_NOTE_ROOM);
            let keep = floor_char_boundary(&message, message.len() * room / cost);
            message.truncate(keep);
            message.push_str(" [cut]");
            line = render(self, levelno, &message, module, now);
        }
        if line.len() >= MAX_LINE {
            let keep = floor_char_boundary(&line, MAX_LINE - 1);
            line.truncate(keep);
        }
        line.push('\n');
        Some(line)
    }
}

/// `text` as it may appear in any output: every credential (and every piece of 16 characters of
/// one) masked, control characters escaped, and cut to at most about `limit` bytes with a note
/// saying how much was left out. The mask comes first, the cut last.
pub fn clean(text: &str, limit: usize) -> String {
    clean_cut(text, limit, 0)
}

/// [`clean`] for a text of which `dropped` bytes after its end were already left out.
fn clean_cut(text: &str, limit: usize, dropped: usize) -> String {
    // Bound what a huge message costs. When some of it is left out, back off one window, so
    // that the mask decides on everything it keeps with the whole piece in view.
    let (text, dropped) = if text.len() > MAX_FORMATTED || dropped > 0 {
        let keep = floor_char_boundary(text, text.len().min(MAX_FORMATTED).saturating_sub(WINDOW));
        (&text[..keep], text.len() - keep + dropped)
    } else {
        (text, 0)
    };
    let limit_inner = if text.len() <= limit {
        usize::MAX // the escapes may grow it a little: the line's own check handles that
    } else {
        limit.saturating_sub(CUT_NOTE_ROOM)
    };
    let masked = mask(text, limit_inner, escape);
    let mut out = masked.text;
    let cut = masked.cut + dropped;
    if cut > 0 {
        let _ = write!(out, " [cut: {cut} more bytes]");
    }
    out
}

/// `text` cleaned (see [`clean`]) to fit one line of at most [`MAX_LINE`] bytes: for errors
/// printed outside the logger (at exit).
pub fn one_line(text: &str) -> String {
    clean(text, MAX_LINE - 1)
}

/// Writes `c`, escaping control characters (and the Unicode line separators and bidirectional
/// overrides) so that they cannot start a new line or disguise one.
fn escape(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
        {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// The largest char boundary at or below `at`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Reads the `LOG_CONFIG` file: `None` when there is none. Refuses, before opening it, anything
/// but a regular file of at most [`MAX_CONFIG_BYTES`] (a FIFO would block the start, a device
/// such as /dev/zero would never end), and reads at most that much.
fn read_config_file(path: &str) -> Result<Option<String>, ConfigError> {
    let error = |problem: String| ConfigError::new("LOG_CONFIG", format!("{path}: {problem}"));
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        // No such file (as Python's os.path.exists sees it): LOG_LEVEL applies.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(error(format!("cannot read it: {e}"))),
    };
    if !meta.is_file() {
        return Err(error(format!(
            "not a regular file (a {}); give the path of a logging.json file",
            file_kind(&meta.file_type())
        )));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(error(format!(
            "{} bytes, more than the {MAX_CONFIG_BYTES} a log configuration may have",
            meta.len()
        )));
    }
    let file = std::fs::File::open(path).map_err(|e| error(format!("cannot read it: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| error(format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(error(format!(
            "more than the {MAX_CONFIG_BYTES} bytes a log configuration may have"
        )));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| error("not UTF-8 text".into()))
}

fn file_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "directory"
    } else if kind.is_fifo() {
        "FIFO"
    } else if kind.is_char_device() {
        "character device"
    } else if kind.is_block_device() {
        "block device"
    } else if kind.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

/// A `LOG_LEVEL` value: a level name in any case, or a number (Python's `int` levels; 0 is
/// NOTSET: everything). Returns what is wrong, in a few words.
pub fn parse_level(text: &str) -> Result<i64, String> {
    let trimmed = text.trim();
    if let Ok(n) = trimmed.parse::<i64>() {
        return Ok(n);
    }
    level_by_name(&trimmed.to_ascii_uppercase()).ok_or_else(|| unknown_level(text))
}

fn unknown_level(text: &str) -> String {
    let hint = if text.trim().eq_ignore_ascii_case("OFF") {
        " (Python has no OFF: CRITICAL, or a number above 50, writes nothing the daemon logs below CRITICAL)"
    } else {
        ""
    };
    format!(
        "unknown level {text:?}: NOTSET, TRACE, DEBUG, INFO, WARNING (WARN), ERROR, CRITICAL (FATAL) or a number{hint}"
    )
}

/// Python's `logging._nameToLevel`, and TRACE.
fn level_by_name(name: &str) -> Option<i64> {
    match name {
        "NOTSET" => Some(NOTSET),
        "TRACE" => Some(TRACE),
        "DEBUG" => Some(DEBUG),
        "INFO" => Some(INFO),
        "WARNING" | "WARN" => Some(WARNING),
        "ERROR" => Some(ERROR),
        "CRITICAL" | "FATAL" => Some(CRITICAL_LEVEL),
        _ => None,
    }
}

/// A dictConfig level, as Python's `logging._checkLevel` takes it: an integer (a JSON `true`
/// is Python's 1), or an upper-case name.
fn level_from_json(v: &Value) -> Result<i64, String> {
    match v {
        Value::String(s) => level_by_name(s).ok_or_else(|| {
            if level_by_name(&s.to_ascii_uppercase()).is_some() {
                format!(
                    "unknown level {s:?}: Python's level names are upper-case ({:?})",
                    s.to_ascii_uppercase()
                )
            } else {
                unknown_level(s)
            }
        }),
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| format!("level {n} is not an integer")),
        Value::Bool(b) => Ok(i64::from(*b)),
        other => Err(format!("level {other} is not an integer or a level name")),
    }
}

/// Python's names for the levels (`Level N` for a number without one, as Python prints it).
fn level_name(levelno: i64) -> Cow<'static, str> {
    match levelno {
        CRITICAL_LEVEL => "CRITICAL".into(),
        ERROR => "ERROR".into(),
        WARNING => "WARNING".into(),
        INFO => "INFO".into(),
        DEBUG => "DEBUG".into(),
        TRACE => "TRACE".into(),
        NOTSET => "NOTSET".into(),
        n => format!("Level {n}").into(),
    }
}

/// The Python level number of a record: `log`'s five levels, and CRITICAL for the
/// [`CRITICAL`] target.
pub fn levelno(level: Level, target: &str) -> i64 {
    match level {
        Level::Error if target == CRITICAL => CRITICAL_LEVEL,
        Level::Error => ERROR,
        Level::Warn => WARNING,
        Level::Info => INFO,
        Level::Debug => DEBUG,
        Level::Trace => TRACE,
    }
}

/// Python's `asctime`: `2024-01-31 12:00:00,123`, in UTC.
fn asctime(now: OffsetDateTime) -> String {
    let format =
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second],[subsecond digits:3]");
    now.format(&format).unwrap_or_default()
}

/// The value of one `%(field)` for a record.
fn field(name: &str, levelno: i64, message: &str, module: &str, now: OffsetDateTime) -> Value {
    match name {
        "asctime" => Value::String(asctime(now)),
        "levelname" => Value::String(level_name(levelno).into_owned()),
        "levelno" => Value::from(levelno),
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

/// Renders one line (without the newline) for the given settings. `message` is used as given:
/// [`LogSettings::line`] masks, escapes and cuts it first. In text, each `%(name)` takes
/// Python's conversion after it ([`Conversion`]: `%(levelname)-8s`, `%(levelno)03d`).
pub fn render(
    settings: &LogSettings,
    levelno: i64,
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
            obj.insert(name.clone(), field(&name, levelno, message, module, now));
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
        let value = field(&inner[..end], levelno, message, module, now);
        let spec = &inner[end + 1..];
        let (conversion, spec_len) = Conversion::read(spec);
        conversion.apply(&value, &mut out);
        rest = spec.get(spec_len..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

/// The printf-style conversion after a `%(name)` in a text format, as Python's `%` operator
/// reads it: flags (`-` left-aligns, `0` pads numbers with zeros, `+` and space sign them), a
/// width, a precision, then the letter (`s`, `d`, `f`, `x`, ...). Widths and precisions are
/// capped at [`MAX_LINE`]: a line never holds more.
#[derive(Debug, Default, PartialEq)]
struct Conversion {
    left: bool,
    zero: bool,
    alternate: bool,
    sign: Option<char>,
    width: usize,
    precision: Option<usize>,
    letter: Option<char>,
}

impl Conversion {
    /// The conversion at the start of `spec`, and how many bytes of it it takes. Without a
    /// letter (Python refuses such a format at its first record) the value is written as text
    /// and whatever follows stays literal.
    fn read(spec: &str) -> (Conversion, usize) {
        let mut c = Conversion::default();
        let bytes = spec.as_bytes();
        let mut at = 0;
        while let Some(&b) = bytes.get(at) {
            match b {
                b'-' => c.left = true,
                b'0' => c.zero = true,
                b'+' => c.sign = Some('+'),
                b' ' => c.sign = c.sign.or(Some(' ')),
                b'#' => c.alternate = true,
                _ => break,
            }
            at += 1;
        }
        let (width, len) = Self::number(bytes.get(at..).unwrap_or_default());
        c.width = width;
        at += len;
        if bytes.get(at) == Some(&b'.') {
            let (precision, len) = Self::number(bytes.get(at + 1..).unwrap_or_default());
            c.precision = Some(precision);
            at += 1 + len;
        }
        if let Some(&b) = bytes.get(at)
            && b"diouxXeEfFgGcrsa".contains(&b)
        {
            c.letter = Some(char::from(b));
            at += 1;
        }
        (c, at)
    }

    /// The digits at the start of `bytes` as a number capped at [`MAX_LINE`], and their count.
    fn number(bytes: &[u8]) -> (usize, usize) {
        let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        let value = bytes.iter().take(digits).fold(0usize, |n, d| {
            n.saturating_mul(10)
                .saturating_add(usize::from(d - b'0'))
                .min(MAX_LINE)
        });
        (value, digits)
    }

    /// Writes `value` converted, padded to the width. The numeric fields (`levelno`, `process`,
    /// `created`) are never negative, so a sign is only ever the `+` or space flag's.
    fn apply(&self, value: &Value, out: &mut String) {
        // A number under a numeric letter: the alternate form's prefix and the digits.
        let numeric = match (self.letter, value.as_f64()) {
            (Some(letter), Some(f)) => {
                let n = value.as_u64().unwrap_or(f as u64);
                match letter {
                    'd' | 'i' | 'u' => Some(("", n.to_string())),
                    'x' => Some(("0x", format!("{n:x}"))),
                    'X' => Some(("0X", format!("{n:X}"))),
                    'o' => Some(("0o", format!("{n:o}"))),
                    'f' | 'F' => {
                        let digits = self.precision.unwrap_or(6);
                        Some(("", format!("{f:.digits$}")))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        let zeros = self.zero && numeric.is_some();
        let (head, body) = match numeric {
            Some((prefix, digits)) => {
                let mut head = self.sign.map(String::from).unwrap_or_default();
                if self.alternate {
                    head.push_str(prefix);
                }
                (head, digits)
            }
            None => match (value, self.precision) {
                (Value::String(s), Some(p)) => (String::new(), s.chars().take(p).collect()),
                (Value::String(s), None) => (String::new(), s.clone()),
                (other, _) => (String::new(), other.to_string()),
            },
        };
        let short = self
            .width
            .saturating_sub(head.chars().count() + body.chars().count());
        let pad = |c: char| c.to_string().repeat(short);
        let parts = if self.left {
            [head, body, pad(' ')]
        } else if zeros {
            [head, pad('0'), body]
        } else {
            [pad(' '), head, body]
        };
        out.extend(parts);
    }
}

/// A `fmt::Write` that keeps at most [`MAX_FORMATTED`] bytes of a message (and counts the rest).
struct Bounded {
    text: String,
    dropped: usize,
}

impl std::fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = MAX_FORMATTED.saturating_sub(self.text.len());
        if s.len() <= room {
            self.text.push_str(s);
        } else {
            let keep = floor_char_boundary(s, room);
            self.text.push_str(&s[..keep]);
            self.dropped += s.len() - keep;
        }
        Ok(())
    }
}

/// The process-wide logger.
struct Logger {
    settings: LogSettings,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.settings
            .enabled(levelno(metadata.level(), metadata.target()))
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
        let mut message = Bounded {
            text: String::new(),
            dropped: 0,
        };
        let _ = message.write_fmt(*record.args());
        let module = module.rsplit("::").next().unwrap_or(module);
        let Some(line) = self.settings.line(
            levelno(record.level(), record.target()),
            &message.text,
            message.dropped,
            module,
            OffsetDateTime::now_utc(),
        ) else {
            return;
        };
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
    let level = settings.level_filter();
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
        assert_eq!(s.threshold, DEBUG);
        assert!(s.json);
        assert_eq!(s.stream, Stream::Stdout);
        let line = render(
            &s,
            INFO,
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
    fn every_record_field_the_daemon_fills() {
        let mut s = settings(NOTSET);
        s.format =
            "%(levelno)s|%(module)s|%(funcName)s|%(created)f|%(process)d|%(thread)s|%(msg)s".into();
        let line = render(
            &s,
            WARNING,
            "m",
            "refresh",
            datetime!(2024-01-31 12:00:00.5 UTC),
        );
        let thread = std::thread::current()
            .name()
            .unwrap_or("thread")
            .to_string();
        let process = std::process::id();
        assert_eq!(
            line,
            format!("30|refresh|refresh|1706702400.500000|{process}|{thread}|m")
        );
        // JSON: one key per field the format names, and the message always (keys sorted).
        s.json = true;
        s.format = "%(asctime)s %(levelno)s %(module)s".into();
        let line = render(&s, INFO, "m", "kube", now());
        let v: Value = serde_json::from_str(&line).expect("one JSON object");
        let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["asctime", "levelno", "message", "module"], "{line}");
        assert_eq!(v["levelno"], 20);
        assert_eq!(v["module"], "kube");
    }

    #[test]
    fn the_handlers_stream_is_stdout_only_when_it_says_so() {
        for (stream, expected) in [
            (r#""ext://sys.stdout""#, Stream::Stdout),
            (r#""ext://sys.stderr""#, Stream::Stderr),
            ("null", Stream::Stderr),
        ] {
            let s = LogSettings::from_dict_config(&format!(
                r#"{{"version":1,"handlers":{{"h":{{"class":"logging.StreamHandler","stream":{stream}}}}},
                   "root":{{"level":"INFO","handlers":["h"]}}}}"#
            ))
            .expect("valid");
            assert_eq!(s.stream, expected, "{stream}");
        }
    }

    #[test]
    fn text_format_follows_the_format_string() {
        let s = LogSettings::from_dict_config(
            r#"{"version":1,"formatters":{"f":{"format":"%(asctime)s [%(levelname)-8s] %(message)s 100%%"}},
               "handlers":{"h":{"class":"logging.StreamHandler","formatter":"f"}},
               "loggers":{"":{"level":"WARNING","handlers":["h"]}}}"#,
        )
        .expect("valid");
        assert_eq!(s.threshold, WARNING);
        assert!(!s.json);
        assert_eq!(s.stream, Stream::Stderr);
        let line = render(
            &s,
            WARNING,
            "careful",
            "m",
            datetime!(2024-01-31 12:00:00 UTC),
        );
        assert_eq!(line, "2024-01-31 12:00:00,000 [WARNING ] careful 100%");
    }

    #[test]
    fn conversions_take_python_flags_widths_and_precisions() {
        let mut s = settings(NOTSET);
        let at = datetime!(2024-01-31 12:00:00.25 UTC);
        for (format, expected) in [
            ("[%(levelname)-8s]", "[WARNING ]"),
            ("[%(levelname)9s]", "[  WARNING]"),
            ("[%(levelname)-6.4s]", "[WARN  ]"),
            ("[%(message).3s]", "[car]"),
            (
                "[%(levelno)04d|%(levelno)-4d|%(levelno)+d|%(levelno) d]",
                "[0030|30  |+30| 30]",
            ),
            (
                "[%(levelno)x|%(levelno)X|%(levelno)o|%(levelno)#5x|%(levelno)#o]",
                "[1e|1E|36| 0x1e|0o36]",
            ),
            (
                "[%(levelno) 05d|%(levelno)-05d|%(levelno)+05d|%(levelno)#06x|%(levelno)+#07o]",
                "[ 0030|30   |+0030|0x001e|+0o0036]",
            ),
            (
                "[%(created).2f|%(created)012.1f|%(levelno).1f]",
                "[1706702400.25|1706702400.2|30.0]",
            ),
            (
                "[%(levelno)05x|%(levelno)#05d|%(levelno)05s|%(levelname)09s]",
                "[0001e|00030|   30|  WARNING]",
            ),
            (
                "[%(levelname)x|%(levelname)X|%(levelname)o|%(levelname)f]",
                "[WARNING|WARNING|WARNING|WARNING]",
            ),
            ("[%(levelname)d]", "[WARNING]"), // Python refuses it at the record: the text, then
            ("[%(message)]", "[careful]"),    // no letter: the text, the rest kept as written
            ("%(message)s%", "careful%"),
            (
                "%(message)999999999999999999999s",
                &format!("{}careful", " ".repeat(MAX_LINE - 7)),
            ),
        ] {
            s.format = format.into();
            assert_eq!(
                render(&s, WARNING, "careful", "m", at),
                expected,
                "{format}"
            );
        }
    }

    #[test]
    fn a_formatted_message_is_kept_to_its_bound_and_the_rest_counted() {
        use std::fmt::Write as _;
        let mut message = Bounded {
            text: String::new(),
            dropped: 0,
        };
        let piece = "\u{e9}".repeat(100 * 1024); // 200 KiB of 2-byte chars
        let _ = write!(message, "{piece}{piece}!");
        assert_eq!(message.text.len(), MAX_FORMATTED);
        assert!(piece.repeat(2).starts_with(&message.text));
        assert_eq!(message.dropped, 2 * piece.len() + 1 - MAX_FORMATTED);
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
        assert_eq!(s.threshold, TRACE);
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

    fn settings(threshold: i64) -> LogSettings {
        LogSettings {
            threshold,
            json: false,
            format: DEFAULT_FORMAT.into(),
            stream: Stream::Stderr,
            source: String::new(),
        }
    }

    fn now() -> OffsetDateTime {
        datetime!(2024-01-31 12:00:00 UTC)
    }

    #[test]
    fn levels_are_pythons() {
        for (text, n) in [
            ("NOTSET", 0),
            ("0", 0),
            ("TRACE", 5),
            ("debug", 10),
            ("INFO", 20),
            ("WARNING", 30),
            ("warn", 30),
            ("ERROR", 40),
            ("CRITICAL", 50),
            ("FATAL", 50),
            ("15", 15),
            (" -3 ", -3),
        ] {
            assert_eq!(parse_level(text), Ok(n), "{text}");
        }
        let off = parse_level("OFF").expect_err("not a Python level");
        assert!(off.contains("CRITICAL"), "{off}");
        assert!(parse_level("LOUD").is_err());
        // NOTSET writes everything, TRACE included; CRITICAL writes only CRITICAL records.
        assert!(settings(NOTSET).enabled(TRACE));
        assert_eq!(settings(NOTSET).level_filter(), LevelFilter::Trace);
        assert!(!settings(CRITICAL_LEVEL).enabled(ERROR));
        assert!(settings(CRITICAL_LEVEL).enabled(CRITICAL_LEVEL));
        assert_eq!(settings(CRITICAL_LEVEL).level_filter(), LevelFilter::Error);
        assert_eq!(settings(51).level_filter(), LevelFilter::Off);
        // The `log` filter lets through every record the threshold writes, and no more.
        for (threshold, filter) in [
            (TRACE, LevelFilter::Trace),
            (DEBUG, LevelFilter::Debug),
            (15, LevelFilter::Info),
            (INFO, LevelFilter::Info),
            (WARNING, LevelFilter::Warn),
            (ERROR, LevelFilter::Error),
        ] {
            assert_eq!(settings(threshold).level_filter(), filter, "{threshold}");
        }
        assert!(settings(ERROR).enabled(ERROR) && !settings(ERROR).enabled(WARNING));
        assert!(settings(25).enabled(WARNING) && !settings(25).enabled(INFO));
        assert_eq!(levelno(Level::Error, CRITICAL), CRITICAL_LEVEL);
        assert_eq!(levelno(Level::Error, "ecrupdater::daemon"), ERROR);
    }

    #[test]
    fn dict_config_levels_as_python_checks_them() {
        let level = |v: &str| {
            LogSettings::from_dict_config(&format!(r#"{{"version":1,"root":{{"level":{v}}}}}"#))
                .map(|s| s.threshold)
        };
        assert_eq!(level("\"NOTSET\""), Ok(0));
        assert_eq!(level("0"), Ok(0));
        assert_eq!(level("35"), Ok(35));
        assert_eq!(level("\"FATAL\""), Ok(50));
        assert_eq!(level("true"), Ok(1));
        assert!(
            level("\"info\"")
                .expect_err("lower case")
                .contains("upper-case")
        );
        assert!(level("\"20\"").is_err(), "Python refuses a number as text");
        assert!(level("20.5").is_err());
        assert!(level("\"OFF\"").is_err());
        // No root level: Python's WARNING. `root` wins over loggers[""], which is used otherwise.
        assert_eq!(
            LogSettings::from_dict_config(r#"{"version":1}"#).map(|s| s.threshold),
            Ok(30)
        );
        assert_eq!(
            LogSettings::from_dict_config(
                r#"{"version":1,"loggers":{"":{"level":"DEBUG"}},"root":{"handlers":[]}}"#
            )
            .map(|s| s.threshold),
            Ok(10)
        );
        // The ecrupdater logger's own level; its NOTSET defers to the root; a handler's level filters.
        assert_eq!(
            LogSettings::from_dict_config(
                r#"{"version":1,"root":{"level":"INFO"},"loggers":{"ecrupdater":{"level":"ERROR"}}}"#
            )
            .map(|s| s.threshold),
            Ok(40)
        );
        assert_eq!(
            LogSettings::from_dict_config(
                r#"{"version":1,"root":{"level":"INFO"},"loggers":{"ecrupdater":{"level":"NOTSET"}}}"#
            )
            .map(|s| s.threshold),
            Ok(20)
        );
        assert_eq!(
            LogSettings::from_dict_config(
                r#"{"version":1,"handlers":{"h":{"class":"logging.StreamHandler","level":"WARNING"}},
                   "root":{"level":"DEBUG","handlers":["h"]}}"#
            )
            .map(|s| s.threshold),
            Ok(30)
        );
    }

    #[test]
    fn a_json_format_without_message_still_carries_the_message() {
        let s = LogSettings::from_dict_config(
            r#"{"version":1,"formatters":{"j":{"()":"pythonjsonlogger.jsonlogger.JsonFormatter","format":"%(levelname)s %(name)s"}},
               "handlers":{"h":{"class":"logging.StreamHandler","formatter":"j"}},"root":{"level":"INFO","handlers":["h"]}}"#,
        )
        .expect("valid");
        let line = s
            .line(WARNING, "the message\nforged", 0, "m", now())
            .expect("written");
        let v: Value = serde_json::from_str(line.trim_end()).expect("one JSON object");
        assert_eq!(v["levelname"], "WARNING");
        assert_eq!(v["name"], "ecrupdater");
        assert_eq!(v["message"], "the message\\nforged");
        assert_eq!(v.as_object().map(|o| o.len()), Some(3), "{line}");
        assert!(s.line(DEBUG, "quiet", 0, "m", now()).is_none());
    }

    #[test]
    fn control_characters_cannot_forge_a_line() {
        let s = settings(INFO);
        let line = s
            .line(
                ERROR,
                "Status: boom\nINFO:ecrupdater:cycle done: 3 updated\r\x1b[2J\u{2028}end\ttab",
                0,
                "m",
                now(),
            )
            .expect("written");
        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
        assert!(line.ends_with('\n'));
        assert_eq!(
            line,
            "ERROR:ecrupdater:Status: boom\\nINFO:ecrupdater:cycle done: 3 updated\\r\\u{1b}[2J\\u{2028}end\\ttab\n"
        );
    }

    #[test]
    fn no_line_is_longer_than_4_kib_and_the_mask_comes_first() {
        let token = format!("tok-{}", "Zq8Wm3Lp".repeat(40));
        let _held = crate::sensitive::Sensitive::new(token.clone());
        // A credential straddling where the line is cut: masked, not cut into a piece.
        for pad in [3900, 4000, 4050, 4080] {
            let message = format!(
                "{}{token}{}",
                "a".repeat(pad),
                "b".repeat(30_000_000 / 1000)
            );
            for json in [false, true] {
                let mut s = settings(NOTSET);
                s.json = json;
                let line = s.line(INFO, &message, 0, "m", now()).expect("written");
                assert!(line.len() <= MAX_LINE, "{} bytes", line.len());
                assert!(line.contains("cut"), "{line}");
                for piece in token.as_bytes().windows(16) {
                    let piece = std::str::from_utf8(piece).unwrap_or_default();
                    assert!(!line.contains(piece), "pad {pad}: {piece} in the line");
                }
            }
        }
        // A message of quotes grows under JSON escaping; still bounded.
        let mut s = settings(NOTSET);
        s.json = true;
        let line = s
            .line(INFO, &"\"".repeat(10_000), 0, "m", now())
            .expect("written");
        assert!(line.len() <= MAX_LINE, "{}", line.len());
        assert!(
            serde_json::from_str::<Value>(line.trim_end()).is_ok(),
            "{line}"
        );
        // Huge messages cost a bounded scan and say how much was left out.
        let huge = "c".repeat(20 * 1024 * 1024);
        let line = settings(NOTSET)
            .line(INFO, &huge, 0, "m", now())
            .expect("written");
        assert!(line.len() <= MAX_LINE);
        assert!(line.ends_with(" more bytes]\n"), "{line}");
    }

    /// The lines of `message` at INFO in the text format, the JSON format, and a text format
    /// that names the message twice.
    fn lines_of(message: &str) -> Vec<(&'static str, String)> {
        let mut text = settings(NOTSET);
        text.format = "%(levelname)s %(message)s".into();
        let mut json = settings(NOTSET);
        json.json = true;
        let mut twice = settings(NOTSET);
        twice.format = "%(message)s | %(message)s".into();
        [("text", text), ("json", json), ("twice", twice)]
            .into_iter()
            .map(|(name, s)| (name, s.line(INFO, message, 0, "m", now()).expect("written")))
            .collect()
    }

    #[test]
    fn a_line_cut_to_fit_keeps_what_fits_and_says_so() {
        // Plain letters, and quotes (which JSON escaping doubles): each line is cut to at most
        // MAX_LINE bytes, keeps nearly all of that room for the message, and says it was cut.
        for message in ["m".repeat(10_000), "\"".repeat(10_000)] {
            for (format, line) in lines_of(&message) {
                assert!(line.len() <= MAX_LINE, "{format}: {} bytes", line.len());
                assert!(
                    line.len() >= MAX_LINE - 4 * CUT_NOTE_ROOM,
                    "{format}: only {} bytes of {MAX_LINE} used",
                    line.len()
                );
                assert!(line.ends_with('\n'), "{format}");
                assert!(line.contains("[cut"), "{format}: {line}");
                if format == "json" {
                    let v: Value = serde_json::from_str(line.trim_end()).expect("one JSON object");
                    assert!(v["message"].as_str().is_some_and(|m| m.contains("[cut")));
                }
            }
        }
        // JSON escaping that makes the line exactly MAX_LINE bytes before its newline: one byte
        // too long, so it is cut with a note and stays one JSON object.
        let mut json = settings(NOTSET);
        json.json = true;
        let exact = (0..MAX_LINE)
            .flat_map(|quotes| ["", "a"].map(|pad| format!("{pad}{}", "\"".repeat(quotes))))
            .find(|m| render(&json, INFO, m, "m", now()).len() == MAX_LINE)
            .expect("some message renders to exactly MAX_LINE bytes");
        let line = json.line(INFO, &exact, 0, "m", now()).expect("written");
        assert!(line.len() <= MAX_LINE, "{} bytes", line.len());
        let v: Value = serde_json::from_str(line.trim_end()).expect("one JSON object");
        assert!(
            v["message"].as_str().is_some_and(|m| m.ends_with("[cut]")),
            "{line}"
        );
        // The note counts every byte left out, those the formatter already dropped included.
        for (len, dropped) in [
            (10_000, 0),
            (10_000, 1000),
            (300 * 1024, 0),
            (300 * 1024, 7),
        ] {
            let line = settings(NOTSET)
                .line(INFO, &"m".repeat(len), dropped, "m", now())
                .expect("written");
            let shown = line.matches('m').count() - 1; // the "m" of "more bytes"
            let note = line.rsplit("[cut: ").next().unwrap_or_default();
            let counted: usize = note
                .trim_end_matches(" more bytes]\n")
                .parse()
                .unwrap_or_else(|_| panic!("no count in {note:?}"));
            assert_eq!(counted, len + dropped - shown, "{len} + {dropped}");
        }
        // A message that just fits is written whole; one byte more is cut, and the note says
        // how many bytes were left out.
        let mut s = settings(NOTSET);
        s.format = "%(levelname)s %(message)s".into();
        let room = MAX_LINE - render(&s, INFO, "", "m", now()).len() - 1;
        let line = s
            .line(INFO, &"f".repeat(room), 0, "m", now())
            .expect("written");
        assert_eq!(line, format!("INFO {}\n", "f".repeat(room)));
        let line = s
            .line(INFO, &"f".repeat(room + 1), 0, "m", now())
            .expect("written");
        assert!(line.len() <= MAX_LINE, "{} bytes", line.len());
        assert!(line.ends_with(" more bytes]\n"), "{line}");
    }

    #[test]
    fn an_error_printed_at_exit_fits_one_line_with_its_newline() {
        // Spaced words: no credential registered by another test in this process matches them.
        let words = |len: usize| "exit line text ".repeat(len / 15 + 1)[..len].to_string();
        let fits = words(MAX_LINE - 1);
        assert_eq!(one_line(&fits), fits);
        let over = one_line(&words(MAX_LINE));
        assert!(over.len() < MAX_LINE, "{} bytes", over.len());
        assert!(over.ends_with(" more bytes]"), "{over}");
    }

    #[test]
    fn cuts_fall_on_the_char_boundary_at_or_below() {
        let text = "a\u{e9}\u{20ac}b"; // 1, 2, 3 and 1 bytes
        let floors: Vec<usize> = (0..=8).map(|at| floor_char_boundary(text, at)).collect();
        assert_eq!(floors, [0, 1, 1, 3, 3, 3, 6, 7, 7]);
    }

    #[test]
    fn log_config_must_be_a_small_regular_file() {
        let err = LogSettings::from_env(Some("/dev/zero"), None).expect_err("a device");
        assert_eq!(err.name, "LOG_CONFIG");
        assert!(err.problem.contains("not a regular file"), "{err}");
        let err = LogSettings::from_env(Some("/"), None).expect_err("a directory");
        assert!(err.problem.contains("directory"), "{err}");
        let dir = std::env::temp_dir().join(format!("ecrupdater-logbig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("logging.json");
        std::fs::write(&path, " ".repeat(MAX_CONFIG_BYTES as usize + 1)).expect("write");
        let err = LogSettings::from_env(path.to_str(), None).expect_err("too big");
        assert!(err.problem.contains("more than"), "{err}");
        std::fs::write(&path, r#"{"version":1,"root":{"level":"ERROR"}}"#).expect("write");
        let s = LogSettings::from_env(path.to_str(), Some("DEBUG")).expect("valid");
        assert_eq!(s.threshold, ERROR);
        assert!(
            s.source.contains("LOG_LEVEL ignored: using "),
            "{}",
            s.source
        );
        let s = LogSettings::from_env(path.to_str(), None).expect("valid");
        assert!(!s.source.contains("ignored"), "{}", s.source);
        // Exactly the limit the README promises, 1 MiB, is read whole (the padding first, so a
        // short read would break it).
        let small = r#"{"version":1,"root":{"level":"WARNING"}}"#;
        let padded = format!("{}{small}", " ".repeat(1024 * 1024 - small.len()));
        std::fs::write(&path, padded).expect("write");
        let s = LogSettings::from_env(path.to_str(), None).expect("at the limit");
        assert_eq!(s.threshold, WARNING);
        // No file there (or a path through a file): LOG_LEVEL applies. Any other failure to
        // look at the path is an error naming it.
        let inside_a_file = format!("{}/logging.json", path.display());
        for absent in [dir.join("absent.json").display().to_string(), inside_a_file] {
            let s = LogSettings::from_env(Some(&absent), Some("ERROR")).expect("no file");
            assert_eq!(s.threshold, ERROR, "{absent}");
        }
        let looped = dir.join("loop.json");
        std::os::unix::fs::symlink(&looped, &looped).expect("symlink");
        let err = LogSettings::from_env(looped.to_str(), Some("ERROR")).expect_err("a loop");
        assert_eq!(err.name, "LOG_CONFIG");
        assert!(err.problem.contains("cannot read it"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_debug_of_a_struct_holding_a_credential_is_masked_by_the_logger() {
        // A struct that holds credentials as plain strings (as a payload or a request body
        // does once built), printed with {:?} by mistake: the logger's mask catches each, whole
        // and in pieces.
        #[derive(Debug)]
        #[allow(dead_code)] // read by Debug only: that is the point
        struct Built {
            username: String,
            password: String,
            auth: String,
            body_excerpt: String,
        }
        let password = crate::sensitive::Sensitive::new("debug-held-ecr-password-0123456789abcdef");
        let auth = format!(
            "QVdTOmRlYnVnLWhlbGQtZWNyLXBhc3N3b3Jk{}",
            "LTAxMjM0NTY3ODlhYmNkZWY="
        );
        crate::sensitive::register(&auth);
        let built = Built {
            username: "AWS".into(),
            password: password.expose().to_string(),
            auth: auth.clone(),
            body_excerpt: password.expose()[6..30].to_string(),
        };
        let line = settings(TRACE)
            .line(DEBUG, &format!("built {built:?}"), 0, "m", now())
            .expect("written");
        assert_eq!(
            line,
            "DEBUG:ecrupdater:built Built { username: \"AWS\", password: \"***\", auth: \"***\", body_excerpt: \"***\" }\n"
        );
    }
}
