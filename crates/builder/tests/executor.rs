use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prism_builder::{
    BuildFailure, BuildStep, CancellationToken, ExecOutcome, Executor, LocalExecutor, LogSink, MaskingSink,
    MemoryLogSink, SecretMasker, Stream, TailBuffer, TeeSink,
};

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

fn exec() -> Arc<dyn Executor> {
    Arc::new(LocalExecutor::new().with_grace(Duration::from_millis(500)))
}

async fn run(st: BuildStep) -> (ExecOutcome, Arc<MemoryLogSink>) {
    let log = Arc::new(MemoryLogSink::new());
    let out = exec().run(st, log.clone(), CancellationToken::new()).await.unwrap();
    (out, log)
}

#[tokio::test]
async fn exit_code_and_streams_in_order() {
    let ws = tempfile::tempdir().unwrap();
    let (out, log) = run(step(
        ws.path(),
        "echo out1; sleep 0.1; echo err1 >&2; sleep 0.1; echo out2; printf 'no newline'; sleep 0.1; echo err2 >&2; exit 3",
        &[],
        Duration::from_secs(10),
    ))
    .await;
    assert_eq!(out, ExecOutcome::Exited(3));
    let lines: Vec<(Stream, String)> = log.lines().into_iter().map(|l| (l.stream, l.line)).collect();
    // "no newline" is only complete at EOF, so it may come after err2; check it apart.
    let (unterminated, rest): (Vec<_>, Vec<_>) = lines.into_iter().partition(|(_, l)| l == "no newline");
    assert_eq!(unterminated, vec![(Stream::Stdout, "no newline".to_owned())]);
    let expected = [
        (Stream::Stdout, "out1"),
        (Stream::Stderr, "err1"),
        (Stream::Stdout, "out2"),
        (Stream::Stderr, "err2"),
    ];
    assert_eq!(
        rest,
        expected.iter().map(|(s, l)| (*s, l.to_string())).collect::<Vec<_>>()
    );
    let seqs: Vec<u64> = log.lines().iter().map(|l| l.seq).collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());

    let (out, _) = run(step(ws.path(), "true", &[], Duration::from_secs(10))).await;
    assert!(out.success());
}

#[tokio::test]
async fn runs_in_workspace_with_clean_env() {
    std::env::set_var("PRISM_TEST_LEAK", "leaked-value");
    let ws = tempfile::tempdir().unwrap();
    let (out, log) = run(step(
        ws.path(),
        "pwd; echo HOME=$HOME; env | sort",
        &[("APP", "demo"), ("BUILD_ID", "42")],
        Duration::from_secs(10),
    ))
    .await;
    assert_eq!(out, ExecOutcome::Exited(0));
    let lines = log.stream(Stream::Stdout);
    let real = ws.path().canonicalize().unwrap();
    assert_eq!(lines[0], real.display().to_string());
    assert_eq!(lines[1], format!("HOME={}", ws.path().display()));
    let env: Vec<&str> = lines[2..].iter().map(|s| s.split('=').next().unwrap()).collect();
    assert!(
        lines.contains(&"APP=demo".to_owned()) && lines.contains(&"BUILD_ID=42".to_owned()),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("leaked-value") || l.contains("CARGO")),
        "{lines:?}"
    );
    // Only what the pipeline passed, plus HOME and PATH, plus what sh itself sets.
    for name in env {
        assert!(
            ["APP", "BUILD_ID", "HOME", "PATH", "PWD", "SHLVL", "_", "OLDPWD"].contains(&name),
            "unexpected {name}"
        );
    }
}

fn read_pids(path: &Path) -> Vec<u32> {
    for _ in 0..100 {
        if let Ok(s) = std::fs::read_to_string(path) {
            let pids: Vec<u32> = s.split_whitespace().filter_map(|p| p.parse().ok()).collect();
            if pids.len() >= 2 {
                return pids;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("pid file not written");
}

/// Gone: no /proc entry, or a zombie waiting for its reaper.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next())
                .unwrap_or("");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

const GROUP_CMD: &str = "sleep 100 & echo $! > pids; sleep 100 & echo $! >> pids; echo started; wait";

#[tokio::test]
async fn timeout_kills_the_whole_group() {
    let ws = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let log = Arc::new(MemoryLogSink::new());
    let st = step(ws.path(), GROUP_CMD, &[], Duration::from_millis(700));
    let out = exec().run(st, log.clone(), CancellationToken::new()).await.unwrap();
    assert_eq!(out, ExecOutcome::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(10));
    let pids = read_pids(&ws.path().join("pids"));
    for pid in &pids {
        assert!(!alive(*pid), "pid {pid} survived the timeout");
    }
    assert!(
        log.stream(Stream::System).iter().any(|l| l.contains("timed out")),
        "{:?}",
        log.lines()
    );
}

#[tokio::test]
async fn sigterm_ignored_gets_sigkill_after_grace() {
    let ws = tempfile::tempdir().unwrap();
    let st = step(
        ws.path(),
        "trap '' TERM; sh -c 'trap \"\" TERM; sleep 100' & echo $! > pids; sleep 100 & echo $! >> pids; wait",
        &[],
        Duration::from_millis(500),
    );
    let started = Instant::now();
    let out = exec()
        .run(st, Arc::new(MemoryLogSink::new()), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out, ExecOutcome::TimedOut);
    assert!(started.elapsed() >= Duration::from_millis(900), "grace not honoured");
    for pid in read_pids(&ws.path().join("pids")) {
        assert!(!alive(pid), "pid {pid} survived");
    }
}

#[tokio::test]
async fn cancel_kills_the_whole_group() {
    let ws = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let st = step(ws.path(), GROUP_CMD, &[], Duration::from_secs(100));
    let c2 = cancel.clone();
    let pidfile = ws.path().join("pids");
    let pf = pidfile.clone();
    tokio::spawn(async move {
        tokio::task::spawn_blocking(move || read_pids(&pf)).await.unwrap();
        c2.cancel();
    });
    let started = Instant::now();
    let out = exec().run(st, Arc::new(MemoryLogSink::new()), cancel).await.unwrap();
    assert_eq!(out, ExecOutcome::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(10));
    for pid in read_pids(&pidfile) {
        assert!(!alive(pid), "pid {pid} survived the cancel");
    }
}

#[tokio::test]
async fn leftover_background_processes_die_with_the_step() {
    let ws = tempfile::tempdir().unwrap();
    let st = step(
        ws.path(),
        "sleep 100 & echo $! > pids; sleep 100 & echo $! >> pids; exit 0",
        &[],
        Duration::from_secs(30),
    );
    let started = Instant::now();
    let (out, _) = run(st).await;
    assert_eq!(out, ExecOutcome::Exited(0));
    assert!(started.elapsed() < Duration::from_secs(10));
    for pid in read_pids(&ws.path().join("pids")) {
        assert!(!alive(pid), "pid {pid} outlived its step");
    }
}

#[tokio::test]
async fn secrets_masked_and_failure_has_tail() {
    let ws = tempfile::tempdir().unwrap();
    let masker = Arc::new(SecretMasker::new());
    masker.register("hunter2-token");
    masker.register("abc"); // too short: not masked
    let all = Arc::new(MemoryLogSink::new());
    let tail = Arc::new(TailBuffer::new(3));
    let tee: Arc<dyn LogSink> = Arc::new(TeeSink::new(vec![all.clone(), tail.clone()]));
    let sink: Arc<dyn LogSink> = Arc::new(MaskingSink::new(masker, Arc::new(tee)));
    let st = step(
        ws.path(),
        "for i in 1 2 3 4 5; do echo line $i; done; echo \"token=$TOKEN abc\"; echo \"$TOKEN\" >&2; exit 7",
        &[("TOKEN", "hunter2-token")],
        Duration::from_secs(10),
    );
    let out = exec().run(st.clone(), sink, CancellationToken::new()).await.unwrap();
    assert_eq!(out, ExecOutcome::Exited(7));
    let lines = all.lines();
    assert!(!lines.iter().any(|l| l.line.contains("hunter2")), "{lines:?}");
    assert!(lines.iter().any(|l| l.line == "token=*** abc"), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.line == "***" && l.stream == Stream::Stderr),
        "{lines:?}"
    );

    let failure = BuildFailure::from_outcome(&st, out, tail.tail()).unwrap();
    let msg = failure.to_string();
    assert!(msg.starts_with("build step `build` failed: exit code 7"), "{msg}");
    assert!(
        msg.contains("line 5") && !msg.contains("line 1") && !msg.contains("hunter2"),
        "{msg}"
    );
}

#[tokio::test]
async fn long_lines_and_binary_output() {
    let ws = tempfile::tempdir().unwrap();
    let (out, log) = run(step(
        ws.path(),
        "head -c 200000 /dev/zero | tr '\\0' x; echo; printf '\\377\\376 bad utf8\\n'",
        &[],
        Duration::from_secs(10),
    ))
    .await;
    assert_eq!(out, ExecOutcome::Exited(0));
    let lines = log.stream(Stream::Stdout);
    assert!(lines.iter().all(|l| l.len() <= 64 * 1024));
    assert_eq!(
        lines.iter().map(|l| l.len()).sum::<usize>() - lines.last().unwrap().len(),
        200000
    );
    assert!(lines.last().unwrap().ends_with(" bad utf8"));
}

#[tokio::test]
async fn missing_workdir_is_an_error() {
    let st = step(Path::new("/nonexistent/prism"), "true", &[], Duration::from_secs(1));
    let err = exec()
        .run(st, Arc::new(MemoryLogSink::new()), CancellationToken::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/prism"));
}

#[tokio::test]
async fn dropping_the_run_kills_the_group() {
    let ws = tempfile::tempdir().unwrap();
    let st = step(ws.path(), GROUP_CMD, &[], Duration::from_secs(100));
    let handle = tokio::spawn(async move {
        exec()
            .run(st, Arc::new(MemoryLogSink::new()), CancellationToken::new())
            .await
    });
    let pidfile = ws.path().join("pids");
    let pids = tokio::task::spawn_blocking(move || read_pids(&pidfile)).await.unwrap();
    handle.abort();
    let _ = handle.await;
    for pid in pids {
        let deadline = Instant::now() + Duration::from_secs(3);
        while alive(pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive(pid), "pid {pid} survived dropping the run");
    }
}

#[test]
fn outcomes_and_lines_serialize() {
    assert_eq!(
        serde_json::to_value(ExecOutcome::Exited(2)).unwrap(),
        serde_json::json!({"kind": "exited", "value": 2})
    );
    assert_eq!(
        serde_json::to_value(ExecOutcome::TimedOut).unwrap(),
        serde_json::json!({"kind": "timed_out"})
    );
    let line = prism_builder::LogLine {
        seq: 1,
        stream: Stream::Stderr,
        line: "x".into(),
    };
    assert_eq!(
        serde_json::to_value(&line).unwrap(),
        serde_json::json!({"seq": 1, "stream": "stderr", "line": "x"})
    );
}
