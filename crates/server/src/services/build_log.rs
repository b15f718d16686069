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

/// Lines held in memory before the writer catches up; past this, lines are
/// counted and dropped (and the drop is logged) rather than exhausting memory.
const MAX_BUFFERED: usize = 100_000;

struct Buffer {
    next_seq: i64,
    pending: Vec<LogLine>,
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
        (std::mem::take(&mut b.pending), b.link.take())
    }
}

impl LogSink for BuildLog {
    fn line(&self, stream: Stream, line: &str) {
        let line = self.masker.mask(line);
        let mut b = self.buffer.lock().expect("log buffer");
        if b.pending.len() >= MAX_BUFFERED {
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

fn push(b: &mut Buffer, stream: &str, line: String) {
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
