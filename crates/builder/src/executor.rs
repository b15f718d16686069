//! Build executors: the [`Executor`] interface and the embedded [`LocalExecutor`].
//!
//! The pipeline hands an executor one [`BuildStep`] at a time together with a
//! [`LogSink`] and a [`CancellationToken`], and gets back an [`ExecOutcome`]. Nothing in
//! that contract assumes a local process, so a Kubernetes Job executor (pod per step,
//! log lines from the pod log, cancel = delete the Job) can implement the same trait.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::logsink::{LogSink, Stream};

/// One command of a build, run in the build's workspace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildStep {
    /// For messages: "build", "package", ...
    pub name: String,
    /// Shell command, run with `sh -c`.
    pub command: String,
    /// The build's workspace; the command runs there and `HOME` points there.
    pub workdir: PathBuf,
    /// The complete environment of the command, apart from `HOME` (always the workdir)
    /// and `PATH` (a standard system path unless given here).
    pub env: BTreeMap<String, String>,
    pub timeout: Duration,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum ExecOutcome {
    /// The command exited by itself with this code.
    Exited(i32),
    /// The command was killed by a signal Prism did not send.
    Signaled(i32),
    /// The timeout passed; the process group was killed.
    TimedOut,
    /// The cancel token fired; the process group was killed.
    Cancelled,
    /// The kernel killed the step for exceeding its memory limit.
    OutOfMemory { limit_bytes: u64 },
}

impl ExecOutcome {
    pub fn success(&self) -> bool {
        matches!(self, Self::Exited(0))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("workspace {0} does not exist or is not a directory")]
    NoWorkdir(PathBuf),
    /// The working directory is reached through a symlink (or `..`): it may lie
    /// outside the build's workspace, so the command is not run there.
    #[error("working directory {0} refused: {1}")]
    WorkdirRefused(PathBuf, String),
    #[error("invalid environment variable name {0:?}")]
    InvalidEnv(String),
    #[error("could not start the build command: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("error while waiting for the build command: {0}")]
    Wait(#[source] std::io::Error),
    /// A remote executor (Jenkins) could not be reached, refused the request, or gave an
    /// answer that made no sense; the message says which and where.
    #[error("{0}")]
    Remote(String),
}

/// Runs build steps. Object safe, so the pipeline can hold an `Arc<dyn Executor>` chosen
/// by configuration.
pub trait Executor: Send + Sync {
    fn name(&self) -> &'static str;

    fn run<'a>(
        &'a self,
        step: BuildStep,
        log: Arc<dyn LogSink>,
        cancel: CancellationToken,
    ) -> BoxFuture<'a, Result<ExecOutcome, ExecError>>;
}

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Lines longer than this are split, so one runaway line cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// What the executor calls when a step's process group is done with (recorded ended).
pub type OnGroupEnd = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

/// Records each step's process group before its command runs, so that a
/// server killed mid-step can, once restarted, end what it left running.
/// Called with the group id once the process exists; the command starts
/// only after the returned future resolved. Its result is called when the
/// group is gone.
/// Its arguments: the group id and the marker set as `PRISM_STEP_MARKER` in
/// the environment of the group's processes.
#[derive(Clone)]
pub struct GroupRecorder(pub Arc<dyn Fn(i32, String) -> BoxFuture<'static, OnGroupEnd> + Send + Sync>);

/// The environment variable that marks a recorded step's processes.
pub const STEP_MARKER_ENV: &str = "PRISM_STEP_MARKER";

impl std::fmt::Debug for GroupRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupRecorder")
    }
}

/// Runs each step as `sh -c <command>` in a new process group with a clean environment.
/// On timeout or cancel the whole group gets SIGTERM, then SIGKILL after `grace`.
/// Processes the command leaves running in its group after it exits are killed too.
#[derive(Debug, Clone)]
pub struct LocalExecutor {
    pub grace: Duration,
    /// How long to keep reading output after the step ended (a process that left the
    /// group could hold the pipes open forever).
    pub drain_timeout: Duration,
    /// Where each step's process group is recorded before its command runs.
    pub recorder: Option<GroupRecorder>,
}

impl Default for LocalExecutor {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(2),
            recorder: None,
        }
    }
}

impl LocalExecutor {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    pub fn with_recorder(mut self, recorder: GroupRecorder) -> Self {
        self.recorder = Some(recorder);
        self
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
        // With a recorder, `sh` first waits at a gate (a line on its stdin) until the
        // step's process group is recorded, then runs the command; if the server dies
        // before that, the gate reads end of file and the command never runs.
        let gated = self.recorder.is_some();
        let mut cmd = Command::new("/bin/sh");
        if gated {
            cmd.arg("-c")
                .arg("read -r go || exit 111; exec /bin/sh -c \"$1\" </dev/null")
                .arg("prism-step")
                .arg(&step.command)
                .stdin(Stdio::piped());
        } else {
            cmd.arg("-c").arg(&step.command).stdin(Stdio::null());
        }
        cmd.current_dir(&step.workdir)
            .env_clear()
            .env("PATH", DEFAULT_PATH)
            .envs(&step.env)
            .env("HOME", &step.workdir);
        let marker = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        if gated {
            cmd.env(STEP_MARKER_ENV, &marker);
        }
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if cancel.is_cancelled() {
            return Ok(ExecOutcome::Cancelled);
        }
        let mut child = cmd.spawn().map_err(ExecError::Spawn)?;
        let pgid = child.id().map(|p| p as libc::pid_t);
        // If this future is dropped mid-run, kill the whole group, not just `sh`.
        let mut guard = GroupGuard(pgid);
        let on_end = match (&self.recorder, child.stdin.take(), pgid) {
            (Some(rec), Some(mut gate), Some(pg)) => {
                let on_end = (rec.0)(pg, marker).await;
                use tokio::io::AsyncWriteExt;
                // A step that already died (killed, no shell) makes this fail: its outcome says so.
                let _ = gate.write_all(b"go\n").await;
                drop(gate);
                Some(on_end)
            }
            _ => None,
        };

        let readers = [
            tokio::spawn(pump(child.stdout.take(), Stream::Stdout, log.clone())),
            tokio::spawn(pump(child.stderr.take(), Stream::Stderr, log.clone())),
        ];

        let ended = tokio::select! {
            r = child.wait() => Ended::Exited(r.map_err(ExecError::Wait)?),
            _ = tokio::time::sleep(step.timeout) => Ended::TimedOut,
            _ = cancel.cancelled() => Ended::Cancelled,
        };

        let outcome = match ended {
            Ended::Exited(status) => {
                // Anything the command left behind in its group dies with the step.
                if let Some(pg) = pgid {
                    killpg(pg, libc::SIGKILL);
                    wait_group_gone(pg, self.grace).await;
                }
                use std::os::unix::process::ExitStatusExt;
                match (status.code(), status.signal()) {
                    (Some(code), _) => ExecOutcome::Exited(code),
                    (None, Some(sig)) => ExecOutcome::Signaled(sig),
                    (None, None) => ExecOutcome::Exited(-1),
                }
            }
            Ended::TimedOut | Ended::Cancelled => {
                let (outcome, why) = match ended {
                    Ended::TimedOut => (ExecOutcome::TimedOut, format!("timed out after {:?}", step.timeout)),
                    _ => (ExecOutcome::Cancelled, "cancelled".to_owned()),
                };
                log.line(
                    Stream::System,
                    &format!("step `{}` {why}; stopping its processes", step.name),
                );
                if let Some(pg) = pgid {
                    self.terminate_group(pg, &mut child).await;
                }
                outcome
            }
        };
        guard.0 = None;
        if let Some(on_end) = on_end {
            on_end().await;
        }
        // Reap `sh` if it has not been reaped yet (kill_on_drop would leave a zombie
        // until the runtime's orphan reaper gets to it).
        let _ = child.wait().await;

        for r in readers {
            let abort = r.abort_handle();
            if tokio::time::timeout(self.drain_timeout, r).await.is_err() {
                abort.abort();
            }
        }
        Ok(outcome)
    }

    /// SIGTERM the group, wait up to `grace` for every member to go, then SIGKILL.
    async fn terminate_group(&self, pg: libc::pid_t, child: &mut tokio::process::Child) {
        killpg(pg, libc::SIGTERM);
        let deadline = tokio::time::Instant::now() + self.grace;
        loop {
            // Reap the leader so that a zombie `sh` does not keep the group alive.
            let _ = child.try_wait();
            if !group_alive(pg) {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        killpg(pg, libc::SIGKILL);
        let _ = child.try_wait();
        wait_group_gone(pg, self.grace).await;
    }
}

/// SIGKILL is delivered asynchronously: wait (bounded) until no live member is left, so
/// that when a step reports its outcome its processes are really gone.
async fn wait_group_gone(pg: libc::pid_t, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while group_alive(pg) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

enum Ended {
    Exited(std::process::ExitStatus),
    TimedOut,
    Cancelled,
}

impl Executor for LocalExecutor {
    fn name(&self) -> &'static str {
        "local"
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

/// Ends a process group left by an earlier run of the server: SIGKILL to the
/// group, then waits (bounded) until no live member is left. Only a group one
/// of whose live members carries `marker` in its environment is killed (the
/// id may have been reused since, e.g. after a reboot). Returns whether it
/// was killed.
pub async fn end_leftover_group(pg: i32, marker: &str, limit: Duration) -> bool {
    if pg <= 1 || !group_alive(pg) || !group_has_marker(pg, marker) {
        return false;
    }
    killpg(pg, libc::SIGKILL);
    wait_group_gone(pg, limit).await;
    true
}

/// Kills a process group with SIGKILL when dropped, unless disarmed (set to `None`).
pub(crate) struct GroupGuard(pub(crate) Option<libc::pid_t>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pg) = self.0 {
            killpg(pg, libc::SIGKILL);
        }
    }
}

pub(crate) fn killpg(pg: libc::pid_t, sig: libc::c_int) {
    if pg <= 1 {
        return;
    }
    // SAFETY: killpg has no memory-safety preconditions; ESRCH (group gone) is fine.
    unsafe {
        libc::killpg(pg, sig);
    }
}

/// Whether any process (other than a zombie that was reaped) is still in group `pg`.
fn group_alive(pg: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks for existence/permission.
    let r = unsafe { libc::killpg(pg, 0) };
    if r == 0 {
        // Members may all be zombies waiting for their parent (init) to reap them; those
        // are gone for our purposes.
        return group_has_live_member(pg);
    }
    std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Whether a live member of group `pg` has `PRISM_STEP_MARKER=<marker>` in its environment.
fn group_has_marker(pg: libc::pid_t, marker: &str) -> bool {
    let wanted = format!("{STEP_MARKER_ENV}={marker}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let state = f.next();
        let pgrp = f.nth(1).and_then(|s| s.parse::<libc::pid_t>().ok());
        if pgrp != Some(pg) || matches!(state, Some("Z" | "X")) {
            continue;
        }
        if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
            if env.split(|b| *b == 0).any(|kv| kv == wanted.as_bytes()) {
                return true;
            }
        }
    }
    false
}

fn group_has_live_member(pg: libc::pid_t) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return true;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name (which is in parentheses and may contain spaces).
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let state = f.next();
        let pgrp = f.nth(1).and_then(|s| s.parse::<libc::pid_t>().ok());
        if pgrp == Some(pg) && state != Some("Z") && state != Some("X") {
            return true;
        }
    }
    false
}

pub(crate) async fn pump<R: AsyncRead + Unpin>(pipe: Option<R>, stream: Stream, log: Arc<dyn LogSink>) {
    let Some(pipe) = pipe else { return };
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        // Read one line, but never more than MAX_LINE_BYTES at a time.
        let mut limited = (&mut reader).take(MAX_LINE_BYTES as u64);
        match limited.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                    if buf.last() == Some(&b'\r') {
                        buf.pop();
                    }
                }
                log.line(stream, &String::from_utf8_lossy(&buf));
            }
        }
    }
}
