//! Turns the byte chunks of Jenkins' progressive console into log lines.
//!
//! Jenkins serves the console by byte offset, so a chunk can end in the middle of a line
//! or even of a UTF-8 character: bytes are kept until their line is complete.

use std::borrow::Cow;

use crate::executor::MAX_LINE_BYTES;

/// Splits a byte stream into lines the way [`LocalExecutor`](crate::LocalExecutor) reads a
/// pipe: `\n` or `\r\n` ends a line, and a line longer than [`MAX_LINE_BYTES`] is cut into
/// pieces of that size so one runaway line cannot exhaust memory.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Add a chunk; returns the lines it completed.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(chunk);
        let mut lines = Vec::new();
        let mut start = 0;
        loop {
            let window = &self.pending[start..self.pending.len().min(start + MAX_LINE_BYTES)];
            if let Some(i) = window.iter().position(|&b| b == b'\n') {
                let mut line = &window[..i];
                if line.last() == Some(&b'\r') {
                    line = &line[..line.len() - 1];
                }
                lines.push(decode(line));
                start += i + 1;
            } else if window.len() == MAX_LINE_BYTES {
                lines.push(decode(window));
                start += MAX_LINE_BYTES;
            } else {
                break;
            }
        }
        self.pending.drain(..start);
        lines
    }

    /// The unterminated last line, if any, once the console is complete.
    pub(crate) fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let line = decode(&self.pending);
        self.pending.clear();
        Some(line)
    }
}

fn decode(line: &[u8]) -> String {
    strip_console_notes(&String::from_utf8_lossy(line)).into_owned()
}

/// Jenkins embeds "console notes" (serialized hyperlink annotations) in the raw console
/// text as `ESC[8mha:<base64>ESC[0m`, hidden by terminals but noise in Prism's log.
const NOTE_START: &str = "\u{1b}[8mha:";
const NOTE_END: &str = "\u{1b}[0m";

fn strip_console_notes(line: &str) -> Cow<'_, str> {
    if !line.contains(NOTE_START) {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find(NOTE_START) {
        out.push_str(&rest[..i]);
        match rest[i..].find(NOTE_END) {
            Some(j) => rest = &rest[i + j + NOTE_END.len()..],
            // An unterminated note is not one: keep the text as it is.
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks_and_utf8() {
        let mut s = LineSplitter::default();
        let text = "one\r\ntwo é\nthree";
        let mut lines = Vec::new();
        for b in text.as_bytes().chunks(1) {
            lines.extend(s.push(b));
        }
        assert_eq!(lines, ["one", "two é"]);
        assert_eq!(s.finish().as_deref(), Some("three"));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn long_lines_are_cut() {
        let mut s = LineSplitter::default();
        let long = "x".repeat(MAX_LINE_BYTES * 2 + 5);
        let lines = s.push(format!("{long}\nshort\n").as_bytes());
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0].len(), MAX_LINE_BYTES);
        assert_eq!(lines[1].len(), MAX_LINE_BYTES);
        assert_eq!(lines[2], "xxxxx");
        assert_eq!(lines[3], "short");
        // Without a newline, a full window is emitted as soon as it is there.
        assert_eq!(s.push("y".repeat(MAX_LINE_BYTES + 1).as_bytes()).len(), 1);
        assert_eq!(s.finish().as_deref(), Some("y"));
    }

    #[test]
    fn console_notes_removed() {
        let line = "Started by user \u{1b}[8mha:////4AAAAB+LCAA=\u{1b}[0mprism";
        assert_eq!(strip_console_notes(line), "Started by user prism");
        assert_eq!(strip_console_notes("plain"), "plain");
        assert_eq!(strip_console_notes("a\u{1b}[8mha:open"), "a\u{1b}[8mha:open");
    }
}
