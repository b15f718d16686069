//! A build's log as it is written: lines arrive from the executor's pipe
//! readers (synchronously, so they must not wait on the database), are masked,
//! numbered and buffered, and a writer task stores them in batches every
//! 200 ms, which is also what the live stream reads.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prism_builder::{LogSink, SecretMasker, Stream};
use prism_store::builds::{self, LogLine};
use prism_store::Store;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Bytes of log held in memory before the writer catches up; past this,
/// lines are counted and dropped (and the drop is logged) rather than
/// exhausting memory.
pub const MAX_BUFFERED_BYTES: usize = 16 * 1024 * 1024;
/// The longest line kept; longer ones are cut and say so.
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// The most log one build attempt stores; past it the log says it was
/// truncated and the rest of the output is dropped (the build goes on).
pub const MAX_LOG_BYTES: u64 = 64 * 1024 * 1024;
/// The most log text one page of `GET /builds/{id}/log` returns: a page ends
/// at `limit` lines or at this many bytes, whichever comes first; the client
/// continues with `after` = the last `seq` it got.
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

struct Buffer {
    next_seq: i64,
    pending: Vec<LogLine>,
    pending_bytes: usize,
    /// Bytes accepted into this attempt's log so far.
    logged_bytes: u64,
    truncated: bool,
    dropped: u64,
    /// The external build page (Jenkins console), once known.
    link: Option<String>,
}

pub struct BuildLog {
    build_id: i64,
    masker: Arc<SecretMasker>,
    buffer: Mutex<Buffer>,
    wake: Notify,
}

impl BuildLog {
    /// Starts the writer; lines continue after those already stored (a retried build).
    pub async fn start(
        store: Store,
        build_id: i64,
        masker: Arc<SecretMasker>,
    ) -> prism_store::Result<(Arc<Self>, LogWriter)> {
        let next_seq = builds::next_log_seq(&mut *store.conn().await?, build_id).await?;
        let log = Arc::new(BuildLog {
            build_id,
            masker,
            buffer: Mutex::new(Buffer {
                next_seq,
                pending: Vec::new(),
                pending_bytes: 0,
                logged_bytes: 0,
                truncated: false,
                dropped: 0,
                link: None,
            }),
            wake: Notify::new(),
        });
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(write_loop(store, log.clone(), stop_rx));
        Ok((log.clone(), LogWriter { task, stop: stop_tx }))
    }

    pub fn system(&self, line: &str) {
        self.line(Stream::System, line);
    }

    fn take(&self) -> (Vec<LogLine>, Option<String>) {
        let mut b = self.buffer.lock().expect("log buffer");
        b.pending_bytes = 0;
        (std::mem::take(&mut b.pending), b.link.take())
    }
}

impl LogSink for BuildLog {
    fn line(&self, stream: Stream, line: &str) {
        let line = cut(self.masker.mask(line));
        let mut b = self.buffer.lock().expect("log buffer");
        if b.truncated {
            return;
        }
        if b.logged_bytes + line.len() as u64 > MAX_LOG_BYTES {
            b.truncated = true;
            let note =
                format!("[prism] log truncated: more than {MAX_LOG_BYTES} bytes; the rest of the output is not kept");
            push(&mut b, "system", note);
            drop(b);
            self.wake.notify_one();
            return;
        }
        if b.pending_bytes + line.len() > MAX_BUFFERED_BYTES {
            b.dropped += 1;
            return;
        }
        if b.dropped > 0 {
            let note = format!("[prism] {} log lines dropped: the log store fell behind", b.dropped);
            b.dropped = 0;
            push(&mut b, "system", note);
        }
        let stream = match stream {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::System => "system",
        };
        push(&mut b, stream, line);
        drop(b);
        self.wake.notify_one();
    }

    fn link(&self, _label: &str, url: &str) {
        self.buffer.lock().expect("log buffer").link = Some(self.masker.mask(url));
        self.wake.notify_one();
    }
}

/// A line cut to [`MAX_LINE_BYTES`] (on a character boundary), saying so.
fn cut(mut line: String) -> String {
    if line.len() > MAX_LINE_BYTES {
        let mut end = MAX_LINE_BYTES;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push_str(" [prism: line cut]");
    }
    line
}

fn push(b: &mut Buffer, stream: &str, line: String) {
    b.pending_bytes += line.len();
    b.logged_bytes += line.len() as u64;
    let seq = b.next_seq;
    b.next_seq += 1;
    b.pending.push(LogLine {
        seq,
        stream: stream.to_string(),
        line,
        at: prism_store::now_ms(),
    });
}

/// The writer task; [`LogWriter::finish`] stores what is left and stops it.
pub struct LogWriter {
    task: JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl LogWriter {
    pub async fn finish(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn write_loop(store: Store, log: Arc<BuildLog>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        let stopping = tokio::select! {
            _ = stop.wait_for(|s| *s) => true,
            _ = log.wake.notified() => false,
        };
        if !stopping {
            // Gather a batch rather than one insert per line.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (lines, link) = log.take();
        if let Err(e) = store_batch(&store, log.build_id, &lines, link.as_deref()).await {
            tracing::warn!(build = log.build_id, error = %e, lines = lines.len(), "could not store build log lines");
        }
        if stopping || *stop.borrow() {
            let (rest, link) = log.take();
            if !rest.is_empty() || link.is_some() {
                let _ = store_batch(&store, log.build_id, &rest, link.as_deref()).await;
            }
            return;
        }
    }
}

async fn store_batch(store: &Store, id: i64, lines: &[LogLine], link: Option<&str>) -> prism_store::Result<()> {
    if lines.is_empty() && link.is_none() {
        return Ok(());
    }
    let mut tx = store.begin().await?;
    if !lines.is_empty() {
        builds::append_logs(&mut tx, id, lines).await?;
    }
    if let Some(url) = link {
        builds::set_external_url(&mut tx, id, url).await?;
    }
    tx.commit().await
}

/// One page of a build's log: at most `limit` lines and, past the first
/// line, at most [`MAX_PAGE_BYTES`] of text. Read in small chunks, so a page
/// of long lines never sits in memory whole.
pub async fn page(
    c: &mut prism_store::AnyConnection,
    id: i64,
    after: i64,
    limit: i64,
) -> prism_store::Result<Vec<LogLine>> {
    let mut out: Vec<LogLine> = Vec::new();
    let mut bytes = 0usize;
    let mut after = after;
    while (out.len() as i64) < limit {
        let want = (limit - out.len() as i64).min(256);
        let chunk = builds::logs(c, id, after, want).await?;
        let short = (chunk.len() as i64) < want;
        for l in chunk {
            if !out.is_empty() && bytes + l.line.len() > MAX_PAGE_BYTES {
                return Ok(out);
            }
            bytes += l.line.len();
            after = l.seq;
            out.push(l);
        }
        if short {
            break;
        }
    }
    Ok(out)
}

/// The whole log as plain text, streamed page by page (each page read on a
/// connection of its own, released before the page is sent).
/// (Bytes for any HTTP body; this module knows nothing of HTTP.)
pub fn text_stream(
    store: Store,
    id: i64,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    futures::stream::unfold(Some(-1i64), move |after| {
        let store = store.clone();
        async move {
            let after = after?;
            let lines = async {
                let mut c = store.conn().await?;
                builds::logs(&mut c, id, after, 1000).await
            }
            .await;
            match lines {
                Ok(lines) if lines.is_empty() => None,
                Ok(lines) => {
                    let next = lines.last().map(|l| l.seq);
                    let mut text = String::new();
                    for l in &lines {
                        text.push_str(&l.line);
                        text.push('\n');
                    }
                    Some((Ok::<_, std::io::Error>(text.into_bytes()), next))
                }
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detached() -> BuildLog {
        BuildLog {
            build_id: 1,
            masker: Arc::new(SecretMasker::default()),
            buffer: Mutex::new(Buffer {
                next_seq: 0,
                pending: Vec::new(),
                pending_bytes: 0,
                logged_bytes: 0,
                truncated: false,
                dropped: 0,
                link: None,
            }),
            wake: Notify::new(),
        }
    }

    /// Issue 11 item 8: the log was capped at 100,000 lines of any length
    /// (6.4 GB with 64 KiB lines); now by bytes, and a truncated log says so.
    #[test]
    fn the_log_is_capped_in_bytes_and_says_when_it_was_cut() {
        let log = detached();
        let long = "x".repeat(64 * 1024);
        for _ in 0..20 {
            log.line(Stream::Stdout, &long);
        }
        let (lines, _) = log.take();
        assert!(
            lines.iter().all(|l| l.line.len() <= MAX_LINE_BYTES + 32),
            "lines are cut"
        );
        assert!(lines[0].line.ends_with("[prism: line cut]"));

        // Past the buffer's bytes, lines are dropped, not held (the writer is behind).
        let line = "y".repeat(MAX_LINE_BYTES);
        for _ in 0..(MAX_BUFFERED_BYTES / MAX_LINE_BYTES + 10) {
            log.line(Stream::Stdout, &line);
        }
        let b = log.buffer.lock().unwrap();
        assert!(b.pending_bytes <= MAX_BUFFERED_BYTES);
        assert!(b.dropped > 0);
        drop(b);
        let _ = log.take();

        // Past the stored total, one note and nothing more.
        let mut seen_note = false;
        for _ in 0..(MAX_LOG_BYTES as usize / MAX_LINE_BYTES + 10) {
            log.line(Stream::Stdout, &line);
            let (lines, _) = log.take();
            seen_note |= lines.iter().any(|l| l.line.contains("log truncated"));
        }
        assert!(seen_note, "the log says it was truncated");
        let b = log.buffer.lock().unwrap();
        assert!(b.truncated && b.logged_bytes <= MAX_LOG_BYTES + 200);
    }
}
