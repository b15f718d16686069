//! Manifest rendering in a child process with a memory and a time limit, so
//! that no template, previewed or saved, can take the server down.
//!
//! The manifests crate refuses oversized results before allocating them
//! (bounded filters, a capped output writer, fuel), but some growth no
//! filter sees: a string doubled with `~` in a loop, a deep structure
//! printed with `pprint`, recursion deeper than a worker thread's stack.
//! Rust aborts the whole process when an allocation fails, so rendering runs
//! in a child: the same binary started with [`CHILD_ARG`] (or the small
//! `prism-render` binary next to it), with `RLIMIT_AS` of
//! [`MEMORY_LIMIT_BYTES`], `RLIMIT_CPU`, no core dumps, no environment, and
//! a wall-clock [`TIME_LIMIT`] after which it is killed. At most
//! [`MAX_CONCURRENT`] children run at once; more renders wait their turn.
//!
//! ```text
//! parent                         child (__render-manifests)
//!   | -- JSON {templates, vars} -->  | set rlimits, render
//!   |                                | stderr: "template NAME" before each
//!   | <-- JSON Result<Rendered> ---  | exit 0
//!   |   killed / aborted: the last "template NAME" is the one at fault
//! ```
//!
//! Settings: `PRISM_RENDER_EXE` names the renderer executable when it is
//! neither the running `prism` binary nor a `prism-render` beside it. With
//! no renderer found (some embedded uses), rendering happens in-process on
//! a dedicated thread, bounded by the filters and fuel only; a warning says so.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use prism_manifests::{ManifestError, Problem, RenderVars, Rendered, TemplateSet};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

/// The hidden first argument that makes the binary a renderer child.
pub const CHILD_ARG: &str = "__render-manifests";
/// Address space of a renderer child.
pub const MEMORY_LIMIT_BYTES: u64 = 512 * 1024 * 1024;
/// Wall-clock time a render may take (CPU time is limited the same).
pub const TIME_LIMIT: Duration = Duration::from_secs(10);
/// Renderer children running at once.
pub const MAX_CONCURRENT: usize = 4;
/// The most a child may answer (every object of at most 8 MiB of YAML, as JSON).
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;
const MAX_STDERR_BYTES: usize = 64 * 1024;

static SLOTS: Semaphore = Semaphore::const_new(MAX_CONCURRENT);

#[derive(Serialize, Deserialize)]
struct Job {
    templates: TemplateSet,
    vars: RenderVars,
}

/// Renders `set` with `vars` within the memory and time limits. A template
/// that hits one gets a problem naming the template and the limit.
pub async fn render(set: &TemplateSet, vars: &RenderVars) -> Result<Rendered, ManifestError> {
    let _slot = SLOTS.acquire().await.expect("the semaphore is never closed");
    match renderer() {
        Some(exe) => render_in_child(exe, set, vars).await,
        None => render_in_thread(set.clone(), vars.clone()).await,
    }
}

/// The renderer executable, found once: `PRISM_RENDER_EXE`, the running
/// `prism` (or `prism-render`) binary, or a `prism-render` beside the running
/// executable or one folder up (the layout of `cargo test`).
pub fn renderer() -> Option<&'static Path> {
    static EXE: OnceLock<Option<PathBuf>> = OnceLock::new();
    EXE.get_or_init(|| {
        if let Some(p) = std::env::var_os("PRISM_RENDER_EXE") {
            return Some(PathBuf::from(p));
        }
        let me = std::env::current_exe().ok()?;
        let name = me.file_name()?.to_string_lossy().into_owned();
        if name == "prism" || name == "prism-render" {
            return Some(me);
        }
        let dir = me.parent()?;
        let found = [dir.join("prism-render"), dir.parent()?.join("prism-render")]
            .into_iter()
            .find(|p| p.is_file());
        if found.is_none() {
            tracing::warn!("no template renderer executable found (set PRISM_RENDER_EXE); rendering in-process, bounded by filters and fuel only");
        }
        found
    })
    .as_deref()
}

fn limit_problem(template: Option<String>, message: String) -> ManifestError {
    ManifestError::Render(vec![Problem {
        template: template.unwrap_or_else(|| "*".into()),
        line: None,
        field: None,
        message,
    }])
}

async fn render_in_child(exe: &Path, set: &TemplateSet, vars: &RenderVars) -> Result<Rendered, ManifestError> {
    let failed = |what: String| limit_problem(None, format!("the template renderer failed: {what}"));
    let input = serde_json::to_vec(&Job {
        templates: set.clone(),
        vars: vars.clone(),
    })
    .map_err(|e| failed(e.to_string()))?;
    let mut child = tokio::process::Command::new(exe)
        .arg(CHILD_ARG)
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failed(format!("cannot start {}: {e}", exe.display())))?;
    let mut stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    // Progress lines, shared so that a child killed for its time still names its template.
    let progress = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = progress.clone();
    let err_reader = tokio::spawn(async move {
        let mut stderr = stderr.take(MAX_STDERR_BYTES as u64);
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            sink.lock().expect("not poisoned").extend_from_slice(&chunk[..n]);
        }
    });
    let writer = async move {
        // A child that dies early closes its stdin: the error shows in its status.
        let _ = stdin.write_all(&input).await;
        drop(stdin);
    };
    let run = async {
        let (_, out, status) = tokio::join!(writer, read_capped(stdout, MAX_ANSWER_BYTES), child.wait());
        (out, status)
    };
    let outcome = tokio::time::timeout(TIME_LIMIT, run).await;
    if outcome.is_ok() {
        let _ = err_reader.await;
    } else {
        err_reader.abort();
    }
    let err = String::from_utf8_lossy(&progress.lock().expect("not poisoned")).into_owned();
    let template = err
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("template "))
        .map(str::to_owned);
    let Ok((out, status)) = outcome else {
        // `kill_on_drop` ends the child when `child` goes out of scope.
        return Err(limit_problem(
            template,
            format!(
                "rendering takes longer than the time limit of {} s",
                TIME_LIMIT.as_secs()
            ),
        ));
    };
    let status = status.map_err(|e| failed(e.to_string()))?;
    if status.success() {
        let out = out.map_err(|e| failed(e.to_string()))?;
        let answer: Result<Rendered, ManifestError> =
            serde_json::from_slice(&out).map_err(|e| failed(format!("unreadable answer: {e}")))?;
        return answer;
    }
    Err(limit_problem(template, child_failure(&status, &err)))
}

/// What a child's death means, in the words a template author needs.
fn child_failure(status: &std::process::ExitStatus, stderr: &str) -> String {
    use std::os::unix::process::ExitStatusExt;
    let memory = format!(
        "rendering needs more than the memory limit of {} MiB",
        MEMORY_LIMIT_BYTES / (1024 * 1024)
    );
    if stderr.contains("memory allocation of") || stderr.contains("capacity overflow") {
        return memory;
    }
    if stderr.contains("overflowed its stack") {
        return "the template nests or recurses too deeply".into();
    }
    match status.signal() {
        Some(libc::SIGXCPU) | Some(libc::SIGKILL) => {
            format!(
                "rendering takes longer than the time limit of {} s",
                TIME_LIMIT.as_secs()
            )
        }
        Some(libc::SIGABRT) | Some(libc::SIGSEGV) | Some(libc::SIGBUS) => memory,
        _ => format!("the template renderer failed ({status})"),
    }
}

async fn read_capped<R: tokio::io::AsyncRead + Unpin>(r: R, cap: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.take(cap as u64 + 1).read_to_end(&mut buf).await?;
    if buf.len() > cap {
        return Err(std::io::Error::other(format!("answer larger than {cap} bytes")));
    }
    Ok(buf)
}

async fn render_in_thread(set: TemplateSet, vars: RenderVars) -> Result<Rendered, ManifestError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A big stack: minijinja allows 500 levels of recursion.
    let spawned = std::thread::Builder::new()
        .name("render".into())
        .stack_size(64 * 1024 * 1024)
        .spawn(move || {
            let _ = tx.send(prism_manifests::render(&set, &vars));
        });
    if let Err(e) = spawned {
        return Err(limit_problem(None, format!("the template renderer failed: {e}")));
    }
    rx.await
        .unwrap_or_else(|_| Err(limit_problem(None, "the template renderer failed".into())))
}

/// The child's `main`: limits itself, reads one job from stdin, writes the
/// result to stdout. Called by `prism __render-manifests` and `prism-render`.
pub fn child_main() -> ExitCode {
    macro_rules! limit {
        ($resource:expr, $value:expr) => {{
            let l = libc::rlimit {
                rlim_cur: $value,
                rlim_max: $value,
            };
            // SAFETY: setrlimit only reads the struct passed to it.
            unsafe { libc::setrlimit($resource, &l) };
        }};
    }
    limit!(libc::RLIMIT_CORE, 0);
    limit!(libc::RLIMIT_AS, MEMORY_LIMIT_BYTES);
    limit!(libc::RLIMIT_CPU, TIME_LIMIT.as_secs());
    prism_manifests::set_progress_hook(|name| {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "template {name}");
        let _ = e.flush();
    });
    let mut input = Vec::new();
    if std::io::stdin().read_to_end(&mut input).is_err() {
        return ExitCode::from(2);
    }
    let job: Job = match serde_json::from_slice(&input) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("bad job: {e}");
            return ExitCode::from(2);
        }
    };
    drop(input);
    let result = prism_manifests::render(&job.templates, &job.vars);
    let mut out = std::io::stdout().lock();
    if serde_json::to_writer(&mut out, &result).is_err() || out.flush().is_err() {
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}
