//! Build log capture: every line carries a sequence number and the stream it came from.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// Which stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
    /// Lines written by Prism itself (step started, timed out, killed, ...).
    System,
}

/// One captured line (without its line terminator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub seq: u64,
    pub stream: Stream,
    pub line: String,
}

/// Receives build output one line at a time. Implementations must be cheap and must not
/// block for long: they are called from the tasks that drain the child's pipes.
pub trait LogSink: Send + Sync {
    fn line(&self, stream: Stream, line: &str);

    /// A link that belongs with this log, such as the console page of the build on a
    /// remote CI server (`label` says which: "jenkins"). Sinks that cannot show links
    /// ignore it, hence the no-op default; sinks that wrap another sink must forward it.
    fn link(&self, label: &str, url: &str) {
        let _ = (label, url);
    }
}

impl<T: LogSink + ?Sized> LogSink for Arc<T> {
    fn line(&self, stream: Stream, line: &str) {
        (**self).line(stream, line)
    }

    fn link(&self, label: &str, url: &str) {
        (**self).link(label, url)
    }
}

/// Keeps every line in memory (tests, short builds), numbering them from 0.
#[derive(Debug, Default)]
pub struct MemoryLogSink {
    lines: Mutex<Vec<LogLine>>,
}

impl MemoryLogSink {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn lines(&self) -> Vec<LogLine> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Lines of one stream, text only, in order.
    pub fn stream(&self, stream: Stream) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.stream == stream)
            .map(|l| l.line)
            .collect()
    }

    /// The last `n` lines.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines[lines.len().saturating_sub(n)..].to_vec()
    }
}

impl LogSink for MemoryLogSink {
    fn line(&self, stream: Stream, line: &str) {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let seq = lines.len() as u64;
        lines.push(LogLine {
            seq,
            stream,
            line: line.to_owned(),
        });
    }
}

/// Keeps only the last `capacity` lines: the "log tail" shown with a build failure.
/// Sequence numbers count every line seen, so gaps show how much was dropped.
#[derive(Debug)]
pub struct TailBuffer {
    capacity: usize,
    inner: Mutex<(u64, VecDeque<LogLine>)>,
}

impl TailBuffer {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new((0, VecDeque::with_capacity(capacity.min(1024)))),
        }
    }

    pub fn tail(&self) -> Vec<LogLine> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .iter()
            .cloned()
            .collect()
    }

    /// Total number of lines seen.
    pub fn total(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).0
    }
}

impl LogSink for TailBuffer {
    fn line(&self, stream: Stream, line: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let seq = g.0;
        g.0 += 1;
        if self.capacity == 0 {
            return;
        }
        if g.1.len() == self.capacity {
            g.1.pop_front();
        }
        g.1.push_back(LogLine {
            seq,
            stream,
            line: line.to_owned(),
        });
    }
}

/// Sends every line to several sinks (e.g. the persistent log and a [`TailBuffer`]).
pub struct TeeSink {
    sinks: Vec<Arc<dyn LogSink>>,
}

impl TeeSink {
    pub fn new(sinks: Vec<Arc<dyn LogSink>>) -> Self {
        Self { sinks }
    }
}

impl LogSink for TeeSink {
    fn line(&self, stream: Stream, line: &str) {
        for s in &self.sinks {
            s.line(stream, line);
        }
    }

    fn link(&self, label: &str, url: &str) {
        for s in &self.sinks {
            s.link(label, url);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_n() {
        let t = TailBuffer::new(3);
        for i in 0..10 {
            t.line(Stream::Stdout, &format!("l{i}"));
        }
        let tail = t.tail();
        assert_eq!(
            tail.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(),
            ["l7", "l8", "l9"]
        );
        assert_eq!(tail[0].seq, 7);
        assert_eq!(t.total(), 10);
    }

    #[test]
    fn memory_numbers_lines() {
        let m = MemoryLogSink::new();
        m.line(Stream::Stdout, "a");
        m.line(Stream::Stderr, "b");
        let l = m.lines();
        assert_eq!((l[1].seq, l[1].stream, l[1].line.as_str()), (1, Stream::Stderr, "b"));
        assert_eq!(m.tail(1)[0].line, "b");
    }
}
