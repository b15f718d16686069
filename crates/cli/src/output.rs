//! Printing results: the server's JSON pretty-printed (`--output json`) or
//! tables (the default). Timestamps (Unix ms) print as RFC 3339 UTC.

use std::io::Write;

use comfy_table::presets;
use comfy_table::{ContentArrangement, Table};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{CliError, CliResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Prints one line on standard output. When the reader has gone away (as
/// with `| head`), stops quietly instead of panicking.
pub fn line(text: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write the output: {e}");
        std::process::exit(1);
    }
}

/// Prints a value as pretty JSON on standard output.
pub fn print_json(value: &Value) {
    line(serde_json::to_string_pretty(value).expect("JSON values serialise"));
}

/// Prints a value as one line of compact JSON (for streams of events).
pub fn json_line(value: &Value) {
    line(serde_json::to_string(value).expect("JSON values serialise"));
}

/// Reads a server answer into the type a table is drawn from.
pub fn parse<T: DeserializeOwned>(value: &Value) -> CliResult<T> {
    T::deserialize(value).map_err(|e| CliError::unexpected(format!("unexpected answer from the server: {e}")))
}

/// A list: one row per record, under a header.
pub fn list_table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.to_vec());
    t
}

/// A grid with borders, for multi-line cells.
pub fn grid_table(header: Vec<String>) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    t
}

/// One record: a row per field, `NAME  value`.
pub fn print_fields(fields: &[(&str, String)]) {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled);
    for (k, v) in fields {
        t.add_row(vec![format!("{k}:"), v.clone()]);
    }
    print_table(&t);
}

pub fn print_table(t: &Table) {
    line(t.trim_fmt());
}

/// Unix milliseconds as RFC 3339 UTC, e.g. `2026-01-31T12:00:00Z`.
pub fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

pub fn opt_time(ms: Option<i64>) -> String {
    ms.map(time).unwrap_or_else(|| "-".into())
}

pub fn opt(v: Option<&str>) -> String {
    v.filter(|s| !s.is_empty()).unwrap_or("-").to_owned()
}

/// An API enum as its word on the wire (`snake_case` and the like), as the
/// tables showed it when they read it as a string.
pub fn word<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(w)) => w,
        other => format!("{other:?}"),
    }
}

pub fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// The first line of a note, cut to `max` characters, for a table cell.
pub fn short(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    let cut: String = line.chars().take(max).collect();
    if cut.len() < line.len() || text.lines().nth(1).is_some() {
        format!("{}…", cut.trim_end())
    } else {
        cut
    }
}
