//! [`JenkinsExecutor`]: runs a build step as a build of a parameterized Jenkins job,
//! through Jenkins' REST API.
//!
//! One step is one Jenkins build, followed as a state machine of plain loops:
//!
//! 1. fetch a CSRF crumb (and the session cookie it is bound to);
//! 2. `buildWithParameters` with the step's environment plus `PRISM_STEP` and
//!    `PRISM_COMMAND`: the job is expected to declare those parameters and run
//!    `sh -c "$PRISM_COMMAND"` (Jenkins drops parameters a job does not declare);
//! 3. poll the queue item until it becomes a build;
//! 4. hand the build's console URL to the log sink ([`LogSink::link`]);
//! 5. stream the progressive console into the log, line by line;
//! 6. read the result; on SUCCESS download the archived artifacts into the workdir.
//!
//! The step's timeout counts from the trigger, queue time included, so a build stuck in
//! the queue cannot hold the pipeline forever. Cancel or timeout cancels the queue item,
//! or stops the build, before returning.

mod artifacts;
mod client;
mod console;

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::executor::{BuildStep, ExecError, ExecOutcome, Executor};
use crate::logsink::{LogSink, Stream};
use client::{JenkinsClient, QueueRef, Session};
use console::LineSplitter;

/// Name of the parameter that carries [`BuildStep::name`].
pub const PARAM_STEP: &str = "PRISM_STEP";
/// Name of the parameter that carries [`BuildStep::command`].
pub const PARAM_COMMAND: &str = "PRISM_COMMAND";

/// A Jenkins API token. Its `Debug` prints `***` and it has no `Display`, so it cannot
/// reach a log or an error message by accident.
#[derive(Clone)]
pub struct ApiToken(String);

impl ApiToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(***)")
    }
}

/// Where the job is and how to reach it. `Debug` shows everything but the token.
#[derive(Debug, Clone)]
pub struct JenkinsConfig {
    /// Jenkins' root URL, http or https, e.g. `https://ci.example.com/jenkins/`.
    pub base_url: String,
    /// The job's name, or its folder path (`team/prism-build` is `/job/team/job/prism-build`).
    pub job: String,
    /// The user the API token belongs to (HTTP basic auth).
    pub username: String,
    /// The user's API token (Jenkins: user, Security, API Token), not the password.
    pub api_token: ApiToken,
    /// How often to poll the queue, the console and the result.
    pub poll_interval: Duration,
    /// Limit for each API request (and for each read of an artifact download).
    pub request_timeout: Duration,
    /// After asking Jenkins to stop a build, how long to wait for it to be over before
    /// returning anyway (so the next step does not overlap an aborting build).
    pub stop_grace: Duration,
    /// Which addresses Jenkins may be reached at (default: the built-in policy).
    pub guard: prism_netguard::Guard,
}

impl JenkinsConfig {
    /// A configuration with the default intervals: poll every second, 30 s per request,
    /// 30 s for a stopped build to end.
    pub fn new(
        base_url: impl Into<String>,
        job: impl Into<String>,
        username: impl Into<String>,
        api_token: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            job: job.into(),
            username: username.into(),
            api_token: ApiToken::new(api_token),
            poll_interval: Duration::from_secs(1),
            request_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(30),
            guard: prism_netguard::Guard::default(),
        }
    }

    pub fn with_guard(mut self, guard: prism_netguard::Guard) -> Self {
        self.guard = guard;
        self
    }

    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    pub fn with_stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }
}

/// What can go wrong talking to Jenkins. The executor reports these as
/// [`ExecError::Remote`] with this message.
#[derive(Debug, thiserror::Error)]
pub enum JenkinsError {
    /// The configuration cannot work (bad URL, empty job path).
    #[error("invalid Jenkins configuration: {0}")]
    Config(String),
    /// No HTTP answer: connection refused, timeout, TLS failure.
    #[error("could not reach Jenkins while {what}: {detail}")]
    Http { what: String, detail: String },
    /// 401: wrong username or API token.
    #[error(
        "Jenkins rejected the credentials of user {user:?} while {what} (HTTP 401): check the username and API token"
    )]
    Unauthorized { what: String, user: String },
    /// 403: missing permission, or a crumb/session cookie Jenkins did not accept.
    #[error("HTTP 403 from Jenkins while {what} as user {user:?}: the user lacks the permission, or Jenkins did not accept the CSRF crumb and its session cookie")]
    Forbidden { what: String, user: String },
    /// 404 on `buildWithParameters`.
    #[error("Jenkins job {job:?} not found (no job at {url})")]
    JobNotFound { job: String, url: String },
    /// A redirect on an API call: usually http redirected to https, or the wrong base URL.
    #[error("Jenkins answered with a redirect to {location} while {what}: set the base URL to Jenkins' own address")]
    Redirected { what: String, location: String },
    /// Any other unexpected status.
    #[error("HTTP {status} from Jenkins while {what}: {body}")]
    Status { what: String, status: u16, body: String },
    /// An answer that does not follow Jenkins' API (missing header, bad JSON).
    #[error("unexpected answer from Jenkins while {what}: {reason}")]
    Protocol { what: String, reason: String },
    /// An artifact whose relative path would write outside the workdir.
    #[error("Jenkins artifact {path:?} refused: {reason}")]
    ArtifactPath { path: String, reason: &'static str },
    /// Writing a downloaded artifact failed.
    #[error("could not write artifact {}: {source}", .path.display())]
    ArtifactIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl JenkinsError {
    /// Worth retrying for a poll (a GET): Jenkins or a proxy in front of it did not
    /// answer, or answered with a server error.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Http { .. } => true,
            Self::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

impl From<JenkinsError> for ExecError {
    fn from(e: JenkinsError) -> Self {
        ExecError::Remote(e.to_string())
    }
}

/// Runs each step as one build of a Jenkins job. See the [module docs](self).
#[derive(Debug)]
pub struct JenkinsExecutor {
    client: JenkinsClient,
    poll: Duration,
    stop_grace: Duration,
}

/// Why the executor gave up on a build before it ended.
#[derive(Debug, Clone, Copy)]
enum Interrupt {
    Cancelled,
    TimedOut,
}

impl Interrupt {
    fn outcome(self) -> ExecOutcome {
        match self {
            Self::Cancelled => ExecOutcome::Cancelled,
            Self::TimedOut => ExecOutcome::TimedOut,
        }
    }
}

/// Why a phase did not run to its end: the step was interrupted (the caller then cancels
/// the queue item or stops the build), or Jenkins failed.
enum Halt {
    Interrupted(Interrupt),
    Failed(JenkinsError),
}

impl From<JenkinsError> for Halt {
    fn from(e: JenkinsError) -> Self {
        Self::Failed(e)
    }
}

/// How the queue phase ended.
enum Queued {
    /// The item became this build.
    Started(client::Executable),
    /// Cancelled in Jenkins: no build will follow.
    Cancelled,
}

/// How many polls in a row may fail with a transient error (no answer, HTTP 5xx) before
/// the step fails: one proxy hiccup during an hour-long build must not fail the step
/// while the build runs on in Jenkins.
const MAX_POLL_FAILURES: u32 = 5;

/// Per-run state shared by the phases.
struct Run<'a> {
    step: &'a BuildStep,
    log: &'a dyn LogSink,
    cancel: &'a CancellationToken,
    deadline: Instant,
    session: Session,
    poll: Duration,
}

impl Run<'_> {
    /// Resolves when the step is cancelled or its time is up.
    async fn interrupted(&self) -> Interrupt {
        tokio::select! {
            _ = self.cancel.cancelled() => Interrupt::Cancelled,
            _ = tokio::time::sleep_until(self.deadline) => Interrupt::TimedOut,
        }
    }

    fn already_interrupted(&self) -> Option<Interrupt> {
        if self.cancel.is_cancelled() {
            Some(Interrupt::Cancelled)
        } else if Instant::now() >= self.deadline {
            Some(Interrupt::TimedOut)
        } else {
            None
        }
    }

    /// `fut`, unless the step is interrupted first.
    async fn unless_interrupted<T>(&self, fut: impl Future<Output = T>) -> Result<T, Halt> {
        tokio::select! {
            r = fut => Ok(r),
            i = self.interrupted() => Err(Halt::Interrupted(i)),
        }
    }

    /// Wait one poll interval, unless the step is interrupted first.
    async fn pause(&self) -> Result<(), Halt> {
        self.unless_interrupted(tokio::time::sleep(self.poll)).await
    }

    /// One poll of Jenkins, retried after transient failures, unless interrupted.
    async fn poll<T, F, Fut>(&self, mut call: F) -> Result<T, Halt>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, JenkinsError>>,
    {
        let mut failures = 0;
        loop {
            match self.unless_interrupted(call()).await? {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() && failures < MAX_POLL_FAILURES => {
                    failures += 1;
                    self.system(&format!("{e}; retrying ({failures}/{MAX_POLL_FAILURES})"));
                    self.pause().await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn system(&self, line: &str) {
        self.log.line(Stream::System, line);
    }

    fn why(&self, interrupt: Interrupt) -> String {
        match interrupt {
            Interrupt::Cancelled => format!("step `{}` cancelled", self.step.name),
            Interrupt::TimedOut => format!("step `{}` timed out after {:?}", self.step.name, self.step.timeout),
        }
    }
}

impl JenkinsExecutor {
    pub fn new(config: JenkinsConfig) -> Result<Self, JenkinsError> {
        Ok(Self {
            client: JenkinsClient::new(&config)?,
            poll: config.poll_interval,
            stop_grace: config.stop_grace,
        })
    }

    async fn run_step(
        &self,
        step: BuildStep,
        log: Arc<dyn LogSink>,
        cancel: CancellationToken,
    ) -> Result<ExecOutcome, ExecError> {
        if !step.workdir.is_dir() {
            return Err(ExecError::NoWorkdir(step.workdir));
        }
        if let Err(e) = crate::workspace::real_dir(&step.workdir) {
            return Err(ExecError::WorkdirRefused(step.workdir, e.to_string()));
        }
        if let Some(k) = step.env.keys().find(|k| k.is_empty() || k.contains(['=', '\0'])) {
            return Err(ExecError::InvalidEnv(k.clone()));
        }
        let mut run = Run {
            step: &step,
            log: log.as_ref(),
            cancel: &cancel,
            deadline: Instant::now() + step.timeout,
            session: Session::default(),
            poll: self.poll,
        };
        if let Some(i) = run.already_interrupted() {
            return Ok(i.outcome());
        }
        // Nothing exists in Jenkins yet: an interrupt here needs no clean-up.
        run.session = match run.unless_interrupted(self.client.session()).await {
            Ok(session) => session?,
            Err(Halt::Interrupted(i)) => return Ok(i.outcome()),
            Err(Halt::Failed(e)) => return Err(e.into()),
        };

        // The trigger is not raced against cancel: dropping the request half-way could
        // still queue a build nobody follows. It is bounded by the request timeout, and an
        // interrupt that came meanwhile is seen by the queue phase.
        let mut params: Vec<(String, String)> = step
            .env
            .iter()
            .filter(|(k, _)| *k != PARAM_STEP && *k != PARAM_COMMAND)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        params.push((PARAM_STEP.into(), step.name.clone()));
        params.push((PARAM_COMMAND.into(), step.command.clone()));
        let item = self.client.trigger(&mut run.session, &params).await?;
        run.system(&format!(
            "triggered Jenkins job {} for step `{}`: queue item {}",
            self.client.job(),
            step.name,
            item.id
        ));

        let executable = match self.wait_in_queue(&run, &item).await {
            Ok(Queued::Started(e)) => e,
            Ok(Queued::Cancelled) => {
                run.system(&format!("Jenkins queue item {} was cancelled in Jenkins", item.id));
                return Ok(ExecOutcome::Cancelled);
            }
            Err(Halt::Interrupted(i)) => return Ok(self.abort_queued(&mut run, &item, i).await?),
            Err(Halt::Failed(e)) => return Err(e.into()),
        };
        let number = executable.number;
        let build = self.client.build_url(&executable)?;
        let console = format!("{}console", with_slash(&executable.url));
        log.link("jenkins", &console);
        run.system(&format!("Jenkins build #{number}: {console}"));

        let (result, artifacts) = match self.watch_build(&run, &build).await {
            Ok(r) => r,
            Err(Halt::Interrupted(i)) => {
                run.system(&format!("{}; stopping Jenkins build #{number}", run.why(i)));
                self.stop_build(&mut run, number, &build).await;
                return Ok(i.outcome());
            }
            Err(Halt::Failed(e)) => return Err(e.into()),
        };
        run.system(&format!("Jenkins build #{number} finished: {result}"));
        let outcome = match result.as_str() {
            "SUCCESS" => ExecOutcome::Exited(0),
            // UNSTABLE means the build ran but Jenkins (tests, quality gates) judged its
            // output not good enough. Prism has one notion of success, exit code 0, and
            // must not package and promote what Jenkins itself flags, so it is a failure.
            "UNSTABLE" | "FAILURE" | "NOT_BUILT" => ExecOutcome::Exited(1),
            // Someone stopped the build in Jenkins.
            "ABORTED" => ExecOutcome::Cancelled,
            other => {
                return Err(JenkinsError::Protocol {
                    what: "reading the build status".into(),
                    reason: format!("unknown build result {other:?}"),
                }
                .into())
            }
        };
        if outcome.success() && !artifacts.is_empty() {
            // The build is over: an interrupt now only abandons the download.
            match run
                .unless_interrupted(self.download_artifacts(&run, &build, &artifacts))
                .await
            {
                Ok(r) => r?,
                Err(Halt::Interrupted(i)) => {
                    run.system(&format!("{}; artifact download abandoned", run.why(i)));
                    return Ok(i.outcome());
                }
                Err(Halt::Failed(e)) => return Err(e.into()),
            }
        }
        Ok(outcome)
    }

    /// Poll the queue item until it becomes a build, reporting once why it waits.
    async fn wait_in_queue(&self, run: &Run<'_>, item: &QueueRef) -> Result<Queued, Halt> {
        let mut reported_why = false;
        loop {
            if let Some(i) = run.already_interrupted() {
                return Err(Halt::Interrupted(i));
            }
            let state = run.poll(|| self.client.queue_item(&run.session, item)).await?;
            if let Some(e) = state.executable {
                return Ok(Queued::Started(e));
            }
            if state.cancelled {
                return Ok(Queued::Cancelled);
            }
            if let (false, Some(why)) = (reported_why, &state.why) {
                run.system(&format!("waiting in Jenkins' queue: {why}"));
                reported_why = true;
            }
            run.pause().await?;
        }
    }

    /// Stream the console into the log until Jenkins says it is complete, then wait for
    /// the result. Returns the result and the archived artifacts.
    async fn watch_build(&self, run: &Run<'_>, build: &Url) -> Result<(String, Vec<client::Artifact>), Halt> {
        let mut lines = LineSplitter::default();
        let mut offset = 0;
        loop {
            let chunk = run.poll(|| self.client.console(&run.session, build, offset)).await?;
            for line in lines.push(&chunk.bytes) {
                run.log.line(Stream::Stdout, &line);
            }
            offset = chunk.next_offset;
            if !chunk.more {
                break;
            }
            run.pause().await?;
        }
        if let Some(line) = lines.finish() {
            run.log.line(Stream::Stdout, &line);
        }
        // The console can be complete a moment before Jenkins records the result.
        loop {
            let info = run.poll(|| self.client.build_info(&run.session, build)).await?;
            if let (false, Some(result)) = (info.building, info.result) {
                return Ok((result, info.artifacts));
            }
            run.pause().await?;
        }
    }

    /// Cancel a queued item. If Jenkins started it meanwhile, stop the build instead.
    async fn abort_queued(
        &self,
        run: &mut Run<'_>,
        item: &QueueRef,
        interrupt: Interrupt,
    ) -> Result<ExecOutcome, JenkinsError> {
        run.system(&format!(
            "{}; cancelling Jenkins queue item {}",
            run.why(interrupt),
            item.id
        ));
        self.client.cancel_queue_item(&mut run.session, item).await?;
        let state = self.client.queue_item(&run.session, item).await?;
        if let Some(e) = state.executable {
            let build = self.client.build_url(&e)?;
            run.system(&format!("Jenkins had just started it: stopping build #{}", e.number));
            self.stop_build(run, e.number, &build).await;
        } else if !state.cancelled {
            run.system(&format!("Jenkins still lists queue item {} as waiting", item.id));
        }
        Ok(interrupt.outcome())
    }

    /// Ask Jenkins to stop the build and wait (up to `stop_grace`) until it is over, so
    /// the next step does not overlap an aborting build. Failures are logged, not
    /// returned: the step's outcome is decided already.
    async fn stop_build(&self, run: &mut Run<'_>, number: u64, build: &Url) {
        if let Err(e) = self.client.stop(&mut run.session, build).await {
            run.system(&format!("could not stop Jenkins build #{number}: {e}"));
            return;
        }
        let deadline = Instant::now() + self.stop_grace;
        loop {
            match self.client.build_info(&run.session, build).await {
                Ok(info) if !info.building => return,
                Ok(_) if Instant::now() < deadline => tokio::time::sleep(self.poll).await,
                Ok(_) => {
                    run.system(&format!(
                        "Jenkins build #{number} still running {:?} after it was asked to stop",
                        self.stop_grace
                    ));
                    return;
                }
                Err(e) => {
                    run.system(&format!("could not check that Jenkins build #{number} stopped: {e}"));
                    return;
                }
            }
        }
    }

    /// Download every archived artifact into the workdir at its relative path. Every
    /// destination is checked (and its directories made) before the first download, so a
    /// list with one bad path writes no file. Each file goes to a temporary file next to
    /// its destination and is renamed into place: no half-written artifact is left
    /// behind, and a symlink at the destination is replaced, not followed.
    async fn download_artifacts(
        &self,
        run: &Run<'_>,
        build: &Url,
        list: &[client::Artifact],
    ) -> Result<(), JenkinsError> {
        for a in list {
            artifacts::check_relative_path(&a.relative_path)?;
        }
        let workdir = &run.step.workdir;
        let base = artifacts::confined_workdir(workdir)?;
        let destinations = list
            .iter()
            .map(|a| artifacts::prepare_destination(&base, &a.relative_path))
            .collect::<Result<Vec<_>, _>>()?;
        for (a, (dir, dest)) in list.iter().zip(destinations) {
            let rel = &a.relative_path;
            let io_err = |source| JenkinsError::ArtifactIo {
                path: dest.clone(),
                source,
            };
            let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io_err)?;
            let mut file = tokio::fs::File::from_std(tmp.as_file().try_clone().map_err(io_err)?);
            let size = self.client.download(&run.session, build, rel, &mut file).await?;
            drop(file);
            tmp.persist(&dest).map_err(|e| io_err(e.error))?;
            run.system(&format!("downloaded artifact {rel} ({size} bytes)"));
        }
        Ok(())
    }
}

fn with_slash(url: &str) -> String {
    match url.ends_with('/') {
        true => url.to_owned(),
        false => format!("{url}/"),
    }
}

impl Executor for JenkinsExecutor {
    fn name(&self) -> &'static str {
        "jenkins"
    }

    fn run<'a>(
        &'a self,
        step: BuildStep,
        log: Arc<dyn LogSink>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<ExecOutcome, ExecError>> {
        Box::pin(self.run_step(step, log, cancel))
    }
}
