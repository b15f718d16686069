//! The Jenkins executor against a double that follows Jenkins' REST API
//! (`jenkins_double`): real HTTP on 127.0.0.1, real `sh` builds.

mod jenkins_double;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::Method;
use jenkins_double::{DoubleConfig, JenkinsDouble, CRUMB_FIELD, TOKEN, USER};
use prism_builder::{
    BuildStep, CancellationToken, ExecError, ExecOutcome, Executor, JenkinsConfig, JenkinsExecutor, LogSink,
    MaskingSink, MemoryLogSink, SecretMasker, Stream, TeeSink,
};

/// Keeps lines and links.
#[derive(Default)]
struct Recorder {
    lines: MemoryLogSink,
    links: Mutex<Vec<(String, String)>>,
}

impl LogSink for Recorder {
    fn line(&self, stream: Stream, line: &str) {
        self.lines.line(stream, line);
    }

    fn link(&self, label: &str, url: &str) {
        self.links.lock().unwrap().push((label.to_owned(), url.to_owned()));
    }
}

impl Recorder {
    fn stdout(&self) -> Vec<String> {
        self.lines.stream(Stream::Stdout)
    }

    fn system(&self) -> Vec<String> {
        self.lines.stream(Stream::System)
    }

    fn all_text(&self) -> String {
        self.lines
            .lines()
            .into_iter()
            .map(|l| l.line)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn links(&self) -> Vec<(String, String)> {
        self.links.lock().unwrap().clone()
    }
}

fn config(d: &JenkinsDouble, job: &str) -> JenkinsConfig {
    JenkinsConfig::new(d.url(), job, USER, TOKEN)
        .with_poll_interval(Duration::from_millis(50))
        .with_request_timeout(Duration::from_secs(5))
        .with_stop_grace(Duration::from_secs(5))
}

fn step(dir: &Path, command: &str, env: &[(&str, &str)], timeout: Duration) -> BuildStep {
    BuildStep {
        name: "build".into(),
        command: command.into(),
        workdir: dir.to_owned(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        timeout,
    }
}

const TEN_S: Duration = Duration::from_secs(10);

async fn run(cfg: JenkinsConfig, st: BuildStep) -> (Result<ExecOutcome, ExecError>, Arc<Recorder>) {
    let exec = JenkinsExecutor::new(cfg).unwrap();
    let log = Arc::new(Recorder::default());
    let out = exec.run(st, log.clone(), CancellationToken::new()).await;
    (out, log)
}

/// Start a run in the background, for tests that cancel it.
fn spawn_run(
    cfg: JenkinsConfig,
    st: BuildStep,
) -> (
    tokio::task::JoinHandle<Result<ExecOutcome, ExecError>>,
    Arc<Recorder>,
    CancellationToken,
) {
    let exec = JenkinsExecutor::new(cfg).unwrap();
    let log = Arc::new(Recorder::default());
    let cancel = CancellationToken::new();
    let (l, c) = (log.clone(), cancel.clone());
    let task = tokio::spawn(async move { exec.run(st, l, c).await });
    (task, log, cancel)
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < TEN_S, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn remote_error(r: Result<ExecOutcome, ExecError>) -> String {
    match r {
        Err(ExecError::Remote(m)) => m,
        other => panic!("expected ExecError::Remote, got {other:?}"),
    }
}

/// The console as Jenkins holds it, in lines, console notes removed.
fn console_lines(console: &str) -> Vec<String> {
    let mut lines: Vec<String> = console
        .split('\n')
        .map(|l| {
            let mut l = l.to_owned();
            while let Some(i) = l.find("\u{1b}[8mha:") {
                let j = l[i..].find("\u{1b}[0m").unwrap() + i + 4;
                l.replace_range(i..j, "");
            }
            l
        })
        .collect();
    if lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

#[tokio::test]
async fn successful_build_streams_console_and_downloads_artifacts() {
    let d = JenkinsDouble::start(DoubleConfig {
        artifacts: vec!["out/bin/app".into(), "version.txt".into(), "missing.txt".into()],
        chunk_size: 37,
        ..Default::default()
    })
    .await;
    let ws = tempfile::tempdir().unwrap();
    let command = "for i in $(seq 1 30); do echo \"line $i\"; done; echo 'to stderr' >&2; \
                   mkdir -p out/bin; printf 'binary\\000bytes' > out/bin/app; echo \"$APP_VERSION\" > version.txt; \
                   printf 'no newline at the end'";
    let (out, log) = run(
        config(&d, "prism-build"),
        step(ws.path(), command, &[("APP_VERSION", "1.2.3")], TEN_S),
    )
    .await;
    assert_eq!(out.unwrap(), ExecOutcome::Exited(0));

    let stdout = log.stdout();
    let build = &d.builds()[0];
    // Every line of Jenkins' console, in order, none split or merged by the chunking.
    assert_eq!(stdout, console_lines(&build.console()));
    assert_eq!(stdout[0], "Started by user prism");
    let first = stdout.iter().position(|l| l == "line 1").unwrap();
    let expected: Vec<String> = (1..=30).map(|i| format!("line {i}")).collect();
    assert_eq!(stdout[first..first + 30], expected[..]);
    assert_eq!(stdout[first + 30], "to stderr");
    // The unterminated last line runs into what Jenkins writes next, as in a real console.
    assert_eq!(stdout[first + 31], "no newline at the endArchiving artifacts");
    assert_eq!(stdout.last().unwrap(), "Finished: SUCCESS");

    // The console was read in several pieces, each starting where the last ended.
    let reads = d.requests_to(Method::GET, "/logText/progressiveText");
    assert!(reads.len() > 5, "{} reads", reads.len());
    assert_eq!(reads[0].query, "start=0");
    let starts: Vec<u64> = reads
        .iter()
        .map(|r| r.query.trim_start_matches("start=").parse().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1] && w[1] - w[0] <= 37), "{starts:?}");
    assert!(*starts.last().unwrap() as usize + 37 >= build.console().len());

    assert_eq!(std::fs::read(ws.path().join("out/bin/app")).unwrap(), b"binary\0bytes");
    assert_eq!(std::fs::read_to_string(ws.path().join("version.txt")).unwrap(), "1.2.3\n");
    assert!(!ws.path().join("missing.txt").exists());
    assert!(log.system().iter().any(|l| l.contains("downloaded artifact out/bin/app (12 bytes)")));
}
