//! A parser for Server-Sent Events (`text/event-stream`), fed with the
//! chunks of a response body as they arrive. It follows the WHATWG rules:
//! lines end in LF, CRLF or CR; `field: value` lines; `:` comments (the
//! server's keep-alives); a blank line dispatches the event; several
//! `data:` lines are joined with newlines.

use std::collections::VecDeque;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `message` when there was none.
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The last `id:` seen in the stream so far.
    pub id: Option<String>,
}

#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes not yet split into lines.
    buf: Vec<u8>,
    /// Whether the start of the stream (and a possible BOM) is behind us.
    started: bool,
    /// Whether the last chunk ended in CR (a line end, perhaps half a CRLF).
    after_cr: bool,
    event: String,
    data: String,
    has_data: bool,
    last_id: Option<String>,
    ready: VecDeque<SseEvent>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next chunk of the body.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
        if !self.started {
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            if self.buf.len() < BOM.len() && BOM.starts_with(&self.buf) {
                return;
            }
            if self.buf.starts_with(BOM) {
                self.buf.drain(..BOM.len());
            }
            self.started = true;
        }
        if self.after_cr && !self.buf.is_empty() {
            self.after_cr = false;
            // Nothing else can be buffered: the CR before ended a line.
            if self.buf[0] == b'\n' {
                self.buf.remove(0);
            }
        }
        let mut start = 0;
        let mut i = 0;
        while i < self.buf.len() {
            match self.buf[i] {
                b'\n' => {
                    self.line_at(start, i);
                    i += 1;
                    start = i;
                }
                b'\r' => {
                    self.line_at(start, i);
                    match self.buf.get(i + 1) {
                        Some(b'\n') => i += 2,
                        Some(_) => i += 1,
                        // The LF of a CRLF may come with the next chunk.
                        None => {
                            self.after_cr = true;
                            i += 1;
                        }
                    }
                    start = i;
                }
                _ => i += 1,
            }
        }
        self.buf.drain(..start);
    }

    /// The next complete event, if any.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        self.ready.pop_front()
    }

    fn line_at(&mut self, start: usize, end: usize) {
        let line = String::from_utf8_lossy(&self.buf[start..end]).into_owned();
        self.line(&line);
    }

    fn line(&mut self, line: &str) {
        if line.is_empty() {
            self.dispatch();
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            _ => {}
        }
    }

    fn dispatch(&mut self) {
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        if !std::mem::take(&mut self.has_data) {
            return;
        }
        self.ready.push_back(SseEvent {
            event: if event.is_empty() { "message".into() } else { event },
            data,
            id: self.last_id.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = vec![];
        for c in chunks {
            p.feed(c);
            while let Some(e) = p.next_event() {
                out.push(e);
            }
        }
        out
    }

    fn ev(event: &str, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
            id: id.map(Into::into),
        }
    }

    #[test]
    fn events_split_anywhere_parse_the_same() {
        let text =
            b"event: step\nid: 1\ndata: {\"a\":1}\n\n:keep-alive\n\nevent: end\ndata: {\"state\":\"succeeded\"}\n\n";
        let whole = all(&[text]);
        assert_eq!(
            whole,
            [
                ev("step", "{\"a\":1}", Some("1")),
                ev("end", "{\"state\":\"succeeded\"}", Some("1"))
            ]
        );
        for cut in 0..text.len() {
            assert_eq!(all(&[&text[..cut], &text[cut..]]), whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(all(&bytes), whole);
    }

    #[test]
    fn crlf_and_cr_line_ends_and_multi_line_data() {
        let got = all(&[b"data: one\r\ndata:two\r", b"\n\r", b"event: x\rdata\r\r"]);
        assert_eq!(got, [ev("message", "one\ntwo", None), ev("x", "", None)]);
        // A CR that ends a chunk ends the line at once, and a LF after it is no blank line.
        let got = all(&[b"data: a\r", b"", b"\ndata: b\r", b"\r"]);
        assert_eq!(got, [ev("message", "a\nb", None)]);
    }

    #[test]
    fn blank_lines_without_data_and_a_trailing_partial_event_dispatch_nothing() {
        assert_eq!(all(&[b"event: step\n\n\n:comment\n\ndata: half"]), []);
    }

    #[test]
    fn a_byte_order_mark_at_the_start_is_skipped() {
        assert_eq!(all(&[b"\xEF\xBB", b"\xBFdata: x\n\n"]), [ev("message", "x", None)]);
    }
}
