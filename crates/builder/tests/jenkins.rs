//! The Jenkins executor against a double that follows Jenkins' REST API
//! (`jenkins_double`): real HTTP on 127.0.0.1, real `sh` builds.

use prism_test_support::jenkins as jenkins_double;

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
    let command = "for i in $(seq 1 30); do echo \"line $i ✓ déjà\"; done; echo 'to stderr' >&2; \
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
    let first = stdout.iter().position(|l| l == "line 1 ✓ déjà").unwrap();
    // Multi-byte characters cut by the 37-byte chunks come out whole.
    let expected: Vec<String> = (1..=30).map(|i| format!("line {i} ✓ déjà")).collect();
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
    assert!(
        starts.windows(2).all(|w| w[0] <= w[1] && w[1] - w[0] <= 37),
        "{starts:?}"
    );
    assert!(*starts.last().unwrap() as usize + 37 >= build.console().len());

    assert_eq!(std::fs::read(ws.path().join("out/bin/app")).unwrap(), b"binary\0bytes");
    assert_eq!(
        std::fs::read_to_string(ws.path().join("version.txt")).unwrap(),
        "1.2.3\n"
    );
    assert!(!ws.path().join("missing.txt").exists());
    assert!(log
        .system()
        .iter()
        .any(|l| l.contains("downloaded artifact out/bin/app (12 bytes)")));
}

#[tokio::test]
async fn long_console_lines_are_cut_like_local_ones() {
    let d = JenkinsDouble::start(DoubleConfig {
        chunk_size: 1 << 20,
        ..Default::default()
    })
    .await;
    let ws = tempfile::tempdir().unwrap();
    let (out, log) = run(
        config(&d, "prism-build"),
        step(
            ws.path(),
            "head -c 150000 /dev/zero | tr '\\0' x; echo; echo after",
            &[],
            TEN_S,
        ),
    )
    .await;
    assert_eq!(out.unwrap(), ExecOutcome::Exited(0));
    let stdout = log.stdout();
    let i = stdout.iter().position(|l| l.starts_with("xxx")).unwrap();
    let max = prism_builder::executor::MAX_LINE_BYTES;
    assert_eq!(stdout[i].len(), max);
    assert_eq!(stdout[i + 1].len(), max);
    assert_eq!(stdout[i + 2].len(), 150_000 - 2 * max);
    assert_eq!(stdout[i + 3], "after");
}

#[tokio::test]
async fn parameters_and_command_reach_the_job_in_a_folder() {
    let d = JenkinsDouble::start(DoubleConfig::default()).await;
    let ws = tempfile::tempdir().unwrap();
    let command = "echo \"v=$APP_VERSION g=$GREETING step=$PRISM_STEP\"";
    let (out, log) = run(
        config(&d, "team/prism-build"),
        step(
            ws.path(),
            command,
            &[
                ("APP_VERSION", "1.2.3"),
                ("GREETING", "hello world & more=yes +1"),
                // Must not replace the step's own command.
                ("PRISM_COMMAND", "echo hijacked"),
            ],
            TEN_S,
        ),
    )
    .await;
    assert_eq!(out.unwrap(), ExecOutcome::Exited(0));
    assert!(
        log.stdout()
            .contains(&"v=1.2.3 g=hello world & more=yes +1 step=build".to_owned()),
        "{:?}",
        log.stdout()
    );
    assert!(!log.all_text().contains("hijacked"));

    let triggers = d.requests_to(Method::POST, "/buildWithParameters");
    assert_eq!(triggers.len(), 1);
    let t = &triggers[0];
    assert_eq!(t.path, "/job/team/job/prism-build/buildWithParameters");
    assert_eq!(t.param("PRISM_COMMAND"), Some(command));
    assert_eq!(t.param("PRISM_STEP"), Some("build"));
    assert_eq!(t.param("APP_VERSION"), Some("1.2.3"));
    assert_eq!(t.form.iter().filter(|(k, _)| k == "PRISM_COMMAND").count(), 1);
    assert_eq!(d.builds()[0].job, "team/prism-build");
}

#[tokio::test]
async fn crumb_and_session_cookie_go_with_every_post() {
    let d = JenkinsDouble::start(DoubleConfig {
        queue_polls: 1000,
        ..Default::default()
    })
    .await;
    let ws = tempfile::tempdir().unwrap();
    let (task, log, cancel) = spawn_run(config(&d, "prism-build"), step(ws.path(), "true", &[], TEN_S));
    wait_for("the queue item", || {
        log.system().iter().any(|l| l.contains("waiting in Jenkins' queue"))
    })
    .await;
    cancel.cancel();
    assert_eq!(task.await.unwrap().unwrap(), ExecOutcome::Cancelled);

    let reqs = d.requests();
    assert_eq!(reqs[0].path, "/crumbIssuer/api/json");
    let posts: Vec<_> = reqs.iter().filter(|r| r.method == Method::POST).collect();
    assert_eq!(posts.len(), 2, "buildWithParameters and cancelItem");
    for p in &posts {
        assert!(
            p.header(CRUMB_FIELD).is_some_and(|c| !c.is_empty()),
            "{}: no crumb",
            p.path
        );
        assert!(
            p.header("cookie").is_some_and(|c| c.contains("JSESSIONID.")),
            "{}: no session",
            p.path
        );
        assert_ne!(p.status, 403, "{}", p.path);
    }
    // One session for the whole run: a single crumb request, the same cookie throughout.
    assert_eq!(d.requests_to(Method::GET, "/crumbIssuer/api/json").len(), 1);
    let cookies: Vec<_> = reqs[1..]
        .iter()
        .map(|r| r.header("cookie").unwrap_or("").to_owned())
        .collect();
    assert!(cookies.windows(2).all(|w| w[0] == w[1]), "{cookies:?}");
}

#[tokio::test]
async fn expired_session_gets_a_new_crumb() {
    let d = JenkinsDouble::start(DoubleConfig {
        queue_polls: 1000,
        ..Default::default()
    })
    .await;
    let ws = tempfile::tempdir().unwrap();
    let (task, log, cancel) = spawn_run(config(&d, "prism-build"), step(ws.path(), "true", &[], TEN_S));
    wait_for("the queue item", || {
        log.system().iter().any(|l| l.contains("waiting in Jenkins' queue"))
    })
    .await;
    d.expire_sessions();
    cancel.cancel();
    assert_eq!(task.await.unwrap().unwrap(), ExecOutcome::Cancelled);
    let cancels = d.requests_to(Method::POST, "/queue/cancelItem");
    assert_eq!(
        cancels.iter().map(|r| r.status.as_u16()).collect::<Vec<_>>(),
        [403, 204]
    );
    assert_eq!(d.requests_to(Method::GET, "/crumbIssuer/api/json").len(), 2);
    assert_eq!(d.cancelled_items(), 1);
}

#[tokio::test]
async fn crumb_issuer_404_means_no_crumb_needed() {
    let d = JenkinsDouble::start(DoubleConfig {
        crumb: false,
        ..Default::default()
    })
    .await;
    let ws = tempfile::tempdir().unwrap();
    let (out, log) = run(config(&d, "prism-build"), step(ws.path(), "echo fine", &[], TEN_S)).await;
    assert_eq!(out.unwrap(), ExecOutcome::Exited(0));
    assert!(log.stdout().contains(&"fine".to_owned()));
    let crumb = d.requests_to(Method::GET, "/crumbIssuer/api/json");
    assert_eq!(crumb.len(), 1);
    assert_eq!(crumb[0].status, 404);
    let trigger = &d.requests_to(Method::POST, "/buildWithParameters")[0];
    assert_eq!(trigger.status, 201);
    assert!(trigger.header(CRUMB_FIELD).is_none());
}

#[tokio::test]
async fn wrong_api_token_is_a_clear_auth_error() {
    let d = JenkinsDouble::start(DoubleConfig::default()).await;
    let ws = tempfile::tempdir().unwrap();
    let mut cfg = config(&d, "prism-build");
    cfg.api_token = prism_builder::ApiToken::new("not-the-right-token");
    let (out, log) = run(cfg, step(ws.path(), "true", &[], TEN_S)).await;
    let msg = remote_error(out);
    assert!(msg.contains("401"), "{msg}");
    assert!(msg.contains("check the username and API token"), "{msg}");
    assert!(msg.contains("\"prism\""), "{msg}");
    assert!(!msg.contains("not-the-right-token"), "{msg}");
    assert!(!log.all_text().contains("not-the-right-token"));
    assert!(d.requests_to(Method::POST, "/buildWithParameters").is_empty());
}

#[tokio::test]
async fn unknown_job_error_names_the_job() {
    let d = JenkinsDouble::start(DoubleConfig::default()).await;
    let ws = tempfile::tempdir().unwrap();
    let (out, _) = run(config(&d, "team/no-such-job"), step(ws.path(), "true", &[], TEN_S)).await;
    let msg = remote_error(out);
    assert!(msg.contains("Jenkins job \"team/no-such-job\" not found"), "{msg}");
    assert!(d.builds().is_empty());
}

#[tokio::test]
async fn failing_command_exits_1_with_its_log_and_no_artifacts() {
    let d = JenkinsDouble::start(DoubleConfig {
        artifacts: vec!["out.txt".into()],
        ..Default::default()
    })
    .await;
    let ws = tempfile::tempdir().unwrap();
    let (out, log) = run(
        config(&d, "prism-build"),
        step(
            ws.path(),
            "echo before; echo partial > out.txt; echo oops >&2; exit 3",
            &[],
            TEN_S,
        ),
    )
    .await;
    assert_eq!(out.unwrap(), ExecOutcome::Exited(1));
    let stdout = log.stdout();
    let i = stdout.iter().position(|l| l == "before").unwrap();
    assert_eq!(stdout[i + 1], "oops");
    assert_eq!(stdout.last().unwrap(), "Finished: FAILURE");
    assert!(log.system().iter().any(|l| l.ends_with("finished: FAILURE")));
    assert!(
        !ws.path().join("out.txt").exists(),
        "artifacts of a failed build are not fetched"
    );
}

#[tokio::test]
async fn unstable_build_is_a_failure() {
    let d = JenkinsDouble::start(DoubleConfig {
        unstable_exit_code: Some(2),
        artifacts: vec!["out.txt".into()],
        ..Default::default()
    })
    .await;
    let ws = tempfile::tempdir().unwrap();
    let (out, log) = run(
        config(&d, "prism-build"),
        step(ws.path(), "echo '1 test failed'; echo x > out.txt; exit 2", &[], TEN_S),
    )
    .await;
    assert_eq!(out.unwrap(), ExecOutcome::Exited(1));
    assert_eq!(log.stdout().last().unwrap(), "Finished: UNSTABLE");
    assert!(!ws.path().join("out.txt").exists());
}

#[tokio::test]
async fn build_aborted_in_jenkins_is_cancelled() {
    let d = JenkinsDouble::start(DoubleConfig::default()).await;
    let ws = tempfile::tempdir().unwrap();
    let (task, log, _cancel) = spawn_run(
        config(&d, "prism-build"),
        step(ws.path(), "echo started; sleep 30", &[], TEN_S),
    );
    wait_for("the build's output", || log.stdout().contains(&"started".to_owned())).await;
    // Someone presses the stop button in Jenkins.
    d.abort_all();
    assert_eq!(task.await.unwrap().unwrap(), ExecOutcome::Cancelled);
    assert_eq!(log.stdout().last().unwrap(), "Finished: ABORTED");
    assert!(d.requests_to(Method::POST, "/stop").is_empty(), "Prism did not stop it");
}

#[tokio::test]
async fn transient_poll_failures_are_retried() {
    let d = JenkinsDouble::start(DoubleConfig::default()).await;
    let ws = tempfile::tempdir().unwrap();
    let (task, log, _cancel) = spawn_run(
        config(&d, "prism-build"),
        step(ws.path(), "echo first; sleep 0.5; echo second", &[], TEN_S),
    );
    wait_for("the build's output", || log.stdout().contains(&"first".to_owned())).await;
    d.fail_gets("/logText/progressiveText", 3);
    assert_eq!(task.await.unwrap().unwrap(), ExecOutcome::Exited(0));
    assert!(log.stdout().contains(&"second".to_owned()));
    let retries: Vec<_> = log.system().into_iter().filter(|l| l.contains("retrying")).collect();
    assert_eq!(retries.len(), 3, "{retries:?}");
    assert!(retries[0].contains("HTTP 503"), "{}", retries[0]);
}

#[tokio::test]
async fn persistent_poll_failures_fail_the_step() {
    let d = JenkinsDouble::start(DoubleConfig::default()).await;
    let ws = tempfile::tempdir().unwrap();
    d.fail_gets("/queue/item/", 100);
    let (out, _) = run(config(&d, "prism-build"), step(ws.path(), "true", &[], TEN_S)).await;
    let msg = remote_error(out);
    assert!(
        msg.contains("HTTP 503 from Jenkins while polling the queue item"),
        "{msg}"
    );
    // The first try and five retries.
    let polls = d
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/queue/item/"))
        .count();
    assert_eq!(polls, 6);
}

#[tokio::test]
async fn cancel_while_queued_cancels_the_item() {
    let d = JenkinsDouble::start(DoubleConfig {
        queue_polls: 1000,
        ..Default::default()
    })
    .await;
    let ws = tempfile::tempdir().unwrap();
    let (task, log, cancel) = spawn_run(config(&d, "prism-build"), step(ws.path(), "true", &[], TEN_S));
    wait_for("several queue polls", || {
        d.requests_to(Method::GET, "/api/json").len() >= 4
    })
    .await;
    cancel.cancel();
    assert_eq!(task.await.unwrap().unwrap(), ExecOutcome::Cancelled);
    let cancels = d.requests_to(Method::POST, "/queue/cancelItem");
    assert_eq!(cancels.len(), 1);
    let location = &d.requests_to(Method::POST, "/buildWithParameters")[0];
    assert_eq!(location.status, 201);
    assert!(cancels[0].query.starts_with("id="), "{}", cancels[0].query);
    assert_eq!(d.cancelled_items(), 1);
    assert!(d.builds().is_empty());
    assert!(d.requests_to(Method::POST, "/stop").is_empty());
    // "why" is reported once, however long the item waits.
    let whys = log
        .system()
        .iter()
        .filter(|l| l.contains("waiting in Jenkins' queue"))
        .count();
    assert_eq!(whys, 1);
}

#[tokio::test]
async fn cancel_racing_the_start_stops_the_build() {
    let d = JenkinsDouble::start(DoubleConfig {
        queue_polls: 1000,
        cancel_too_late: true,
        ..Default::default()
    })
    .await;
    let ws = tempfile::tempdir().unwrap();
    let (task, log, cancel) = spawn_run(config(&d, "prism-build"), step(ws.path(), "sleep 30", &[], TEN_S));
    wait_for("the queue item", || {
        log.system().iter().any(|l| l.contains("waiting in Jenkins' queue"))
    })
    .await;
    cancel.cancel();
    assert_eq!(task.await.unwrap().unwrap(), ExecOutcome::Cancelled);
    assert_eq!(d.requests_to(Method::POST, "/queue/cancelItem").len(), 1);
    assert_eq!(d.requests_to(Method::POST, "/job/prism-build/1/stop").len(), 1);
    assert_eq!(d.builds()[0].result().as_deref(), Some("ABORTED"));
}

#[tokio::test]
async fn cancel_while_running_stops_the_build() {
    let d = JenkinsDouble::start(DoubleConfig::default()).await;
    let ws = tempfile::tempdir().unwrap();
    let (task, log, cancel) = spawn_run(
        config(&d, "prism-build"),
        step(ws.path(), "echo started; sleep 30; echo never", &[], TEN_S),
    );
    wait_for("the build's output", || log.stdout().contains(&"started".to_owned())).await;
    let t = Instant::now();
    cancel.cancel();
    assert_eq!(task.await.unwrap().unwrap(), ExecOutcome::Cancelled);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(d.requests_to(Method::POST, "/job/prism-build/1/stop").len(), 1);
    assert!(d.requests_to(Method::POST, "/queue/cancelItem").is_empty());
    // The executor waited for Jenkins to finish aborting before it returned.
    let build = &d.builds()[0];
    assert!(!build.building());
    assert_eq!(build.result().as_deref(), Some("ABORTED"));
    assert!(!log.all_text().contains("never"));
}

#[tokio::test]
async fn timeout_stops_the_build() {
    let d = JenkinsDouble::start(DoubleConfig::default()).await;
    let ws = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let (out, log) = run(
        config(&d, "prism-build"),
        step(ws.path(), "echo started; sleep 30", &[], Duration::from_millis(1500)),
    )
    .await;
    assert_eq!(out.unwrap(), ExecOutcome::TimedOut);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(d.requests_to(Method::POST, "/stop").len(), 1);
    assert_eq!(d.builds()[0].result().as_deref(), Some("ABORTED"));
    assert!(log.stdout().contains(&"started".to_owned()));
    assert!(log
        .system()
        .iter()
        .any(|l| l.contains("timed out") && l.contains("stopping Jenkins build #1")));
}

#[tokio::test]
async fn artifacts_outside_the_workdir_are_refused() {
    let outside = tempfile::tempdir().unwrap();
    let absolute = outside.path().join("absolute.txt");
    let cases: Vec<(String, &str)> = vec![
        ("../escaped.txt".into(), "contains '..'"),
        ("sub/../../escaped.txt".into(), "contains '..'"),
        (absolute.display().to_string(), "absolute paths are not allowed"),
        ("link/escaped.txt".into(), "outside the workdir"),
    ];
    for (path, reason) in cases {
        let d = JenkinsDouble::start(DoubleConfig {
            forged_artifacts: vec![("good.txt".into(), b"ok".to_vec()), (path.clone(), b"evil".to_vec())],
            ..Default::default()
        })
        .await;
        let root = tempfile::tempdir().unwrap();
        let ws = root.path().join("ws");
        std::fs::create_dir(&ws).unwrap();
        std::os::unix::fs::symlink(outside.path(), ws.join("link")).unwrap();
        let (out, _) = run(config(&d, "prism-build"), step(&ws, "true", &[], TEN_S)).await;
        let msg = remote_error(out);
        assert!(
            msg.contains(&format!("{path:?} refused")) && msg.contains(reason),
            "{path}: {msg}"
        );
        assert!(!root.path().join("escaped.txt").exists(), "{path}");
        assert!(!absolute.exists(), "{path}");
        assert!(!outside.path().join("escaped.txt").exists(), "{path}");
        // Checked before anything is downloaded: not even the good artifact is written.
        assert!(!ws.join("good.txt").exists(), "{path}");
        assert!(d.requests_to(Method::GET, "/artifact/good.txt").is_empty(), "{path}");
    }
}

#[tokio::test]
async fn link_names_the_console_url() {
    let d = JenkinsDouble::start(DoubleConfig::default()).await;
    let ws = tempfile::tempdir().unwrap();
    let (out, log) = run(config(&d, "team/prism-build"), step(ws.path(), "true", &[], TEN_S)).await;
    assert_eq!(out.unwrap(), ExecOutcome::Exited(0));
    let console = format!("{}job/team/job/prism-build/1/console", d.url());
    assert_eq!(log.links(), [("jenkins".to_owned(), console.clone())]);
    assert!(log.system().iter().any(|l| l.contains(&console)), "{:?}", log.system());
}

#[test]
fn wrapper_sinks_forward_links() {
    let rec = Arc::new(Recorder::default());
    let masker = Arc::new(SecretMasker::new());
    masker.register("s3cr3t-value");
    let masked = Arc::new(MaskingSink::new(masker, rec.clone()));
    let tee = TeeSink::new(vec![masked, Arc::new(MemoryLogSink::new())]);
    tee.link("jenkins", "https://ci.example.com/job/x/1/console?t=s3cr3t-value");
    assert_eq!(
        rec.links(),
        [(
            "jenkins".to_owned(),
            "https://ci.example.com/job/x/1/console?t=***".to_owned()
        )]
    );
}

#[tokio::test]
async fn api_token_never_in_debug_or_logs() {
    let d = JenkinsDouble::start(DoubleConfig::default()).await;
    let cfg = config(&d, "prism-build");
    let exec = JenkinsExecutor::new(cfg.clone()).unwrap();
    for dbg in [format!("{cfg:?}"), format!("{exec:?}")] {
        assert!(!dbg.contains(TOKEN), "{dbg}");
        assert!(dbg.contains("***"), "{dbg}");
    }
    let ws = tempfile::tempdir().unwrap();
    let (out, log) = run(cfg, step(ws.path(), "echo hi; env", &[], TEN_S)).await;
    assert_eq!(out.unwrap(), ExecOutcome::Exited(0));
    assert!(log.stdout().contains(&"hi".to_owned()));
    assert!(!log.all_text().contains(TOKEN));
    assert!(log.links().iter().all(|(_, u)| !u.contains(TOKEN)));
    // The token is sent, as basic auth, and nowhere else.
    for r in d.requests() {
        assert!(!r.path.contains(TOKEN) && !r.query.contains(TOKEN));
        assert!(r.form.iter().all(|(_, v)| !v.contains(TOKEN)));
    }
}

#[test]
fn invalid_configuration_is_refused() {
    for (url, job, what) in [
        ("ftp://ci.example.com/", "x", "http or https"),
        (
            "https://prism:token@ci.example.com/",
            "x",
            "must not contain credentials",
        ),
        ("https://ci.example.com/", "", "job path"),
        ("https://ci.example.com/", "team/../x", "job path"),
        ("not a url", "x", "base URL"),
    ] {
        let err = JenkinsExecutor::new(JenkinsConfig::new(url, job, "u", "token-value")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(what), "{url} {job}: {msg}");
        assert!(!msg.contains("token-value"), "{msg}");
    }
}

fn denying(ranges: &[&str]) -> prism_netguard::Guard {
    prism_netguard::Guard::new(
        prism_domain::AddressPolicy::parse(
            "p",
            &prism_domain::AddressRules {
                allowed: vec![],
                denied: ranges.iter().map(|s| s.to_string()).collect(),
            },
        )
        .unwrap(),
    )
}

// Issue 11 item 9. Before the fix the executor connected to any address.
#[tokio::test]
async fn jenkins_in_a_denied_range_is_not_contacted() {
    let double = JenkinsDouble::start(DoubleConfig::default()).await;
    let port = double
        .url()
        .trim_end_matches('/')
        .rsplit_once(':')
        .unwrap()
        .1
        .to_owned();
    // By address: refused at once (the built-in rule and an admin's range).
    for (url, guard) in [
        ("http://169.254.169.254/".to_owned(), prism_netguard::Guard::default()),
        (double.url(), denying(&["127.0.0.1"])),
    ] {
        let err =
            JenkinsExecutor::new(JenkinsConfig::new(url.clone(), "build", USER, TOKEN).with_guard(guard)).unwrap_err();
        assert!(err.to_string().contains(prism_netguard::UNREACHABLE), "{url}: {err}");
    }
    // By a name that resolves into the range: the build step cannot reach it.
    let url = format!("http://localhost:{port}/");
    let exec = JenkinsExecutor::new(
        JenkinsConfig::new(url, "build", USER, TOKEN)
            .with_poll_interval(Duration::from_millis(50))
            .with_guard(denying(&["127.0.0.0/8", "::1"])),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Recorder::default());
    let out = exec
        .run(
            step(dir.path(), "true", &[], Duration::from_secs(20)),
            log.clone(),
            CancellationToken::new(),
        )
        .await;
    let text = format!("{out:?} {}", log.all_text());
    assert!(text.contains(prism_netguard::UNREACHABLE), "{text}");
    assert!(
        double.requests().is_empty(),
        "nothing reached Jenkins: {:?}",
        double.requests()
    );
}
