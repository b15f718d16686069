//! Size-checked replacements for the built-in filters whose result can be
//! far larger than their input (`tojson(indent=N)`, `indent(N)`, `replace`,
//! `join`, `format`), and the capped writer every template renders through.
//!
//! Rust aborts the process when an allocation fails, so these refuse a result
//! past [`MAX_OUTPUT_BYTES`] *before* allocating it. They are the first line;
//! the second is the server rendering in a child process with a memory and a
//! time limit (see `prism_server::render_sandbox`), which also covers what no
//! filter can see, such as a string doubled with `~` in a loop.

use std::io;

use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, Error, ErrorKind, State, Value};

use crate::render::MAX_OUTPUT_BYTES;

/// The largest indentation `tojson(indent=N)` accepts.
pub const MAX_JSON_INDENT: usize = 16;
/// The largest width `indent(N)` accepts.
pub const MAX_INDENT_WIDTH: usize = 1024;
/// The largest width or precision in a `format` specification.
pub const MAX_FORMAT_WIDTH: usize = 4096;

/// The most items a list or map printed with `{{ }}` may have: printing a
/// lazily repeated `[1, 2] * 10**12` otherwise walks it item by item.
pub const MAX_PRINTED_ITEMS: usize = 10_000;

pub(crate) fn install(env: &mut Environment<'_>) {
    env.set_formatter(|out, state, value| {
        let container = matches!(
            value.kind(),
            minijinja::value::ValueKind::Seq | minijinja::value::ValueKind::Map | minijinja::value::ValueKind::Iterable
        );
        if container && value.len().is_some_and(|n| n > MAX_PRINTED_ITEMS) {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("printing a collection of more than {MAX_PRINTED_ITEMS} items (the limit)"),
            ));
        }
        minijinja::escape_formatter(out, state, value)
    });
    env.add_filter("tojson", tojson);
    env.add_filter("indent", indent);
    env.add_filter("replace", replace);
    env.add_filter("join", join);
    env.add_filter("format", format);
}

fn too_large(what: &str) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("{what} would be larger than {MAX_OUTPUT_BYTES} bytes (the output limit of a template)"),
    )
}

/// An `io::Write` into memory that refuses to grow past `limit` bytes (the
/// write that would cross it is refused whole, nothing is allocated for it).
#[derive(Debug)]
pub(crate) struct CappedWriter {
    pub buf: Vec<u8>,
    pub limit: usize,
    pub exceeded: bool,
}

impl CappedWriter {
    pub fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            limit,
            exceeded: false,
        }
    }
}

impl io::Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("output limit reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn tojson(value: &Value, indent: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let indent = match indent {
        Some(i) => Some(i),
        None => kwargs.get::<Option<Value>>("indent")?,
    };
    kwargs.assert_all_used()?;
    let indent = match indent {
        None => None,
        Some(v) if v.is_true() && v.kind() == minijinja::value::ValueKind::Bool => Some(2),
        Some(v) if v.kind() == minijinja::value::ValueKind::Bool => None,
        Some(v) => {
            let n = i128::try_from(v.clone()).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("tojson: indent {v} is not a number"),
                )
            })?;
            if !(0..=MAX_JSON_INDENT as i128).contains(&n) {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("tojson: indent {n} is past the limit of {MAX_JSON_INDENT}"),
                ));
            }
            Some(n as usize)
        }
    };
    let mut out = CappedWriter::new(MAX_OUTPUT_BYTES);
    let result = match indent {
        Some(n) => {
            let pad = " ".repeat(n);
            let fmt = serde_json::ser::PrettyFormatter::with_indent(pad.as_bytes());
            let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
            serde::Serialize::serialize(value, &mut ser)
        }
        None => serde_json::to_writer(&mut out, value),
    };
    if out.exceeded {
        return Err(too_large("tojson"));
    }
    result.map_err(|e| Error::new(ErrorKind::InvalidOperation, "cannot serialize to JSON").with_source(e))?;
    let s = String::from_utf8(out.buf).map_err(|_| Error::new(ErrorKind::InvalidOperation, "tojson: not UTF-8"))?;
    // The same escaping as the built-in: safe inside HTML and JSON alike.
    let mut rv = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => rv.push_str("\\u003c"),
            '>' => rv.push_str("\\u003e"),
            '&' => rv.push_str("\\u0026"),
            '\'' => rv.push_str("\\u0027"),
            _ => rv.push(c),
        }
    }
    Ok(Value::from_safe_string(rv))
}

/// The value as text, refused when larger than the output limit: every
/// filter here returns at least about as much as it reads.
fn as_text(value: &Value) -> Result<std::borrow::Cow<'_, str>, Error> {
    if let Some(len) = value.as_str().map(str::len).or_else(|| value.len()) {
        if len > MAX_OUTPUT_BYTES {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("input larger than {MAX_OUTPUT_BYTES} bytes (the output limit of a template)"),
            ));
        }
    }
    Ok(match value.as_str() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(value.to_string()),
    })
}

fn indent(
    value: &Value,
    width: Option<Value>,
    first: Option<bool>,
    blank: Option<bool>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let width = match width {
        Some(w) => Some(w),
        None => kwargs.get::<Option<Value>>("width")?,
    };
    let width = match width {
        None => 4,
        Some(w) => {
            let n = i128::try_from(w.clone()).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("indent: width {w} is not a number"),
                )
            })?;
            if !(0..=MAX_INDENT_WIDTH as i128).contains(&n) {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("indent: width {n} is past the limit of {MAX_INDENT_WIDTH}"),
                ));
            }
            n as usize
        }
    };
    let first = match first {
        Some(f) => f,
        None => kwargs.get::<Option<bool>>("first")?.unwrap_or(false),
    };
    let blank = match blank {
        Some(b) => b,
        None => kwargs.get::<Option<bool>>("blank")?.unwrap_or(false),
    };
    kwargs.assert_all_used()?;
    let text = as_text(value)?;
    let lines = text.matches('\n').count() + 1;
    if text.len().saturating_add(lines.saturating_mul(width)) > MAX_OUTPUT_BYTES {
        return Err(too_large("indent"));
    }
    let input = text.strip_suffix('\n').unwrap_or(&text);
    let input = input.strip_suffix('\r').unwrap_or(input);
    let pad = " ".repeat(width);
    let mut out = String::with_capacity(input.len() + lines * width);
    let mut it = input.split('\n');
    if !first {
        out.push_str(it.next().unwrap_or(""));
        out.push('\n');
    }
    for line in it {
        if !line.is_empty() || blank {
            out.push_str(&pad);
        }
        out.push_str(line);
        out.push('\n');
    }
    let trimmed = out.strip_suffix('\n').unwrap_or(&out);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed).len();
    out.truncate(trimmed);
    Ok(Value::from(out))
}

fn replace(value: &Value, from: &Value, to: &Value) -> Result<Value, Error> {
    let (s, from, to) = (as_text(value)?, as_text(from)?, as_text(to)?);
    let hits = if from.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(from.as_ref()).count()
    };
    let len = s
        .len()
        .saturating_sub(hits.saturating_mul(from.len()))
        .saturating_add(hits.saturating_mul(to.len()));
    if len > MAX_OUTPUT_BYTES {
        return Err(too_large("replace"));
    }
    Ok(Value::from(s.replace(from.as_ref(), &to)))
}

fn join(value: &Value, joiner: Option<&Value>) -> Result<Value, Error> {
    let joiner = joiner.map(as_text).transpose()?.unwrap_or_default();
    let iter = value.try_iter().map_err(|e| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("cannot join value of type {}", value.kind()),
        )
        .with_source(e)
    })?;
    let mut out = String::new();
    for (i, item) in iter.enumerate() {
        let sep = if i > 0 { joiner.len() } else { 0 };
        let piece = match item.as_str() {
            Some(s) => std::borrow::Cow::Borrowed(s),
            None => {
                // Stringifying a huge structure could itself be huge: bounded by its length first.
                std::borrow::Cow::Owned(item.to_string())
            }
        };
        if out.len().saturating_add(sep).saturating_add(piece.len()) > MAX_OUTPUT_BYTES {
            return Err(too_large("join"));
        }
        if i > 0 {
            out.push_str(&joiner);
        }
        out.push_str(&piece);
    }
    Ok(Value::from(out))
}

fn format(state: &State, format: &Value, args: Rest<Value>) -> Result<Value, Error> {
    if let Some(spec) = format.as_str() {
        check_format_widths(spec)?;
    }
    minijinja::filters::format(state, format, args)
}

/// Refuses printf widths and precisions past [`MAX_FORMAT_WIDTH`] (and `*`,
/// a width taken from the arguments) before anything is padded.
fn check_format_widths(spec: &str) -> Result<(), Error> {
    let mut chars = spec.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        if chars.peek() == Some(&'(') {
            // A mapping key, `%(name)s`: skipped to its closing parenthesis.
            for k in chars.by_ref() {
                if k == ')' {
                    break;
                }
            }
        }
        let mut number = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() {
                number.push(d);
            } else if "-+ #.*".contains(d) {
                if d == '*' {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "format: '*' widths are not supported",
                    ));
                }
                check_number(&number)?;
                number.clear();
            } else {
                break;
            }
            chars.next();
        }
        check_number(&number)?;
    }
    Ok(())
}

fn check_number(digits: &str) -> Result<(), Error> {
    let too_big =
        digits.trim_start_matches('0').len() > 4 || digits.parse::<usize>().is_ok_and(|n| n > MAX_FORMAT_WIDTH);
    if too_big {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("format: width {digits} is past the limit of {MAX_FORMAT_WIDTH}"),
        ));
    }
    Ok(())
}
