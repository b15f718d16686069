//! The contained build runner: each build step runs in a container (runc)
//! from the stack's builder image, never as a process on Prism's host.
//!
//! The container sees the builder image (read-only), the build's workspace
//! and its dependency caches, a private `/tmp`, and nothing else: not Prism's
//! data dir, database, key, environment or processes. Root inside it is an
//! unprivileged uid outside; it has no capabilities; cgroup limits bound its
//! memory, CPU and processes; its network is either loopback only or
//! user-mode networking that cannot reach the host's loopback services.
//! Timeout, cancel and the end of the step kill everything in it.
//!
//! Each container's id starts with the executor's prefix, so a restarted
//! Prism can find and end what its previous run left ([`sweep`]).

mod cgroup;
mod netns;
pub mod spec;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

pub use cgroup::Limits;

use crate::executor::{pump, BuildStep, ExecError, ExecOutcome, Executor, DEFAULT_PATH};
use crate::logsink::{LogSink, Stream};

/// How a build container reaches the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// Loopback only: nothing outside the container.
    None,
    /// User-mode networking through slirp4netns, host loopback disabled.
    UserMode { slirp4netns: PathBuf },
}

/// A dependency cache: a host directory kept between builds of one
/// application, mounted read-write at `container` (e.g. `/cache/npm`).
#[derive(Debug, Clone)]
pub struct Cache {
    pub host: PathBuf,
    pub container: String,
}

#[derive(Debug, Clone)]
pub struct ContainerConfig {
    /// The runc binary.
    pub runc: PathBuf,
    /// runc's state directory (`runc --root`), Prism's own.
    pub state_dir: PathBuf,
    /// Where each container's bundle (its config.json) is written.
    pub bundle_dir: PathBuf,
    /// The builder image, unpacked; mounted read-only as the root.
    pub rootfs: PathBuf,
    /// The build's workspace on the host; mounted at `/workspace`. A step's
    /// workdir must lie inside it.
    pub workspace: PathBuf,
    pub caches: Vec<Cache>,
    /// Host uid/gid that root inside maps to; the next 65536 ids are the container's.
    pub host_id: u32,
    /// Parent cgroup of every build container, e.g. `prism-builds`.
    pub cgroup_parent: String,
    pub limits: Limits,
    pub network: Network,
    /// Container ids start with this (e.g. `prism-<instance>-`), for [`sweep`].
    pub id_prefix: String,
    /// Between SIGTERM and SIGKILL on timeout or cancel.
    pub grace: Duration,
}

pub const WORKSPACE: &str = "/workspace";
const ID_COUNT: u32 = 65_536;
const TMP_BYTES: u64 = 512 << 20;

/// Runs build steps in containers.
#[derive(Debug, Clone)]
pub struct ContainerExecutor {
    config: Arc<ContainerConfig>,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl ContainerExecutor {
    pub fn new(config: ContainerConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }

    fn container_id(&self, step: &str) -> String {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let clean: String = step
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(20)
            .collect();
        format!("{}{}-{}-{n}", self.config.id_prefix, clean, std::process::id())
    }

    async fn run_step(
        &self,
        step: BuildStep,
        log: Arc<dyn LogSink>,
        cancel: CancellationToken,
    ) -> Result<ExecOutcome, ExecError> {
        let c = &self.config;
        if !step.workdir.is_dir() {
            return Err(ExecError::NoWorkdir(step.workdir));
        }
        if let Some(k) = step.env.keys().find(|k| k.is_empty() || k.contains(['=', '\0'])) {
            return Err(ExecError::InvalidEnv(k.clone()));
        }
        let cwd =
            container_cwd(&c.workspace, &step.workdir).ok_or_else(|| ExecError::NoWorkdir(step.workdir.clone()))?;
        if cancel.is_cancelled() {
            return Ok(ExecOutcome::Cancelled);
        }
        // The workspace and caches belong to the container's root, which is
        // an unprivileged uid on the host.
        for dir in std::iter::once(&c.workspace).chain(c.caches.iter().map(|k| &k.host)) {
            std::fs::create_dir_all(dir).map_err(ExecError::Spawn)?;
            chown_tree(dir, c.host_id).map_err(ExecError::Spawn)?;
        }

        let id = self.container_id(&step.name);
        let cg = cgroup::BuildCgroup::create(&c.cgroup_parent, &id, c.limits).map_err(ExecError::Spawn)?;
        let net = match &c.network {
            Network::None => None,
            Network::UserMode { slirp4netns } => Some(
                netns::UserNet::start(slirp4netns)
                    .await
                    .map_err(|e| ExecError::Spawn(std::io::Error::other(e.to_string())))?,
            ),
        };
        let bundle = c.bundle_dir.join(&id);
        std::fs::create_dir_all(&bundle).map_err(ExecError::Spawn)?;
        let resolv = bundle.join("resolv.conf");
        // slirp4netns answers DNS at 10.0.2.3.
        std::fs::write(&resolv, "nameserver 10.0.2.3\n").map_err(ExecError::Spawn)?;
        let mut binds = vec![spec::Bind {
            host: c.workspace.clone(),
            container: WORKSPACE.into(),
            writable: true,
        }];
        binds.extend(c.caches.iter().map(|k| spec::Bind {
            host: k.host.clone(),
            container: k.container.clone(),
            writable: true,
        }));
        if net.is_some() {
            binds.push(spec::Bind {
                host: resolv,
                container: "/etc/resolv.conf".into(),
                writable: false,
            });
        }
        // Mount points must exist in the (read-only) root; the container's
        // root cannot make them there, Prism can.
        for b in &binds {
            let at = c.rootfs.join(b.container.trim_start_matches('/'));
            if !at.exists() {
                if b.host.is_dir() {
                    std::fs::create_dir_all(&at).map_err(ExecError::Spawn)?;
                } else {
                    if let Some(parent) = at.parent() {
                        std::fs::create_dir_all(parent).map_err(ExecError::Spawn)?;
                    }
                    std::fs::write(&at, b"").map_err(ExecError::Spawn)?;
                }
            }
        }
        let env = container_env(&step.env);
        let config = spec::config(&spec::SpecInput {
            rootfs: &c.rootfs,
            args: vec!["/bin/sh".into(), "-c".into(), step.command.clone()],
            env,
            cwd,
            binds,
            host_id: c.host_id,
            id_count: ID_COUNT,
            netns_path: net.as_ref().map(|n| n.path().to_path_buf()),
            cgroups_path: cg.container_path(),
            tmp_bytes: TMP_BYTES,
        });
        std::fs::write(bundle.join("config.json"), config.to_string()).map_err(ExecError::Spawn)?;

        let mut child = Command::new(&c.runc)
            .arg("--root")
            .arg(&c.state_dir)
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(ExecError::Spawn)?;
        // Whatever happens to this future from here on, the container goes.
        let mut guard = ContainerGuard {
            runc: c.runc.clone(),
            state_dir: c.state_dir.clone(),
            id: Some(id.clone()),
            bundle: bundle.clone(),
        };
        let readers = [
            tokio::spawn(pump(child.stdout.take(), Stream::Stdout, log.clone())),
            tokio::spawn(pump(child.stderr.take(), Stream::Stderr, log.clone())),
        ];
        let ended = tokio::select! {
            r = child.wait() => Some(r.map_err(ExecError::Wait)?),
            _ = tokio::time::sleep(step.timeout) => None,
            _ = cancel.cancelled() => None,
        };
        let outcome = match ended {
            Some(status) => {
                use std::os::unix::process::ExitStatusExt;
                // runc exits with the container's code, or 128+signal when it was killed.
                let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(9));
                if cg.killed_for_memory(code == 128 + 9) {
                    log.line(
                        Stream::System,
                        &format!(
                            "step `{}` was killed: OOMKilled, out of memory (limit {} MiB)",
                            step.name,
                            c.limits.memory_bytes >> 20
                        ),
                    );
                    ExecOutcome::OutOfMemory {
                        limit_bytes: c.limits.memory_bytes,
                    }
                } else if code > 128 && code < 128 + 65 {
                    ExecOutcome::Signaled(code - 128)
                } else {
                    ExecOutcome::Exited(code)
                }
            }
            None => {
                let (outcome, why) = if cancel.is_cancelled() {
                    (ExecOutcome::Cancelled, "cancelled".to_owned())
                } else {
                    (ExecOutcome::TimedOut, format!("timed out after {:?}", step.timeout))
                };
                log.line(
                    Stream::System,
                    &format!("step `{}` {why}; stopping its container", step.name),
                );
                kill(&c.runc, &c.state_dir, &id, "TERM").await;
                if tokio::time::timeout(c.grace, child.wait()).await.is_err() {
                    kill(&c.runc, &c.state_dir, &id, "KILL").await;
                    let _ = child.wait().await;
                }
                outcome
            }
        };
        // The container's pid 1 has ended; runc kills whatever else ran in it.
        remove(&c.runc, &c.state_dir, &id).await;
        guard.id = None;
        let _ = std::fs::remove_dir_all(&bundle);
        for r in readers {
            let abort = r.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), r).await.is_err() {
                abort.abort();
            }
        }
        drop(net);
        drop(cg);
        Ok(outcome)
    }
}

impl Executor for ContainerExecutor {
    fn name(&self) -> &'static str {
        "container"
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

/// The step's working directory as the container sees it; None when it is
/// not inside the workspace.
fn container_cwd(workspace: &Path, workdir: &Path) -> Option<String> {
    let rel = workdir.strip_prefix(workspace).ok()?;
    let mut cwd = String::from(WORKSPACE);
    for part in rel.components() {
        match part {
            std::path::Component::Normal(p) => {
                cwd.push('/');
                cwd.push_str(p.to_str()?);
            }
            std::path::Component::CurDir => {}
            _ => return None,
        }
    }
    Some(cwd)
}

fn container_env(env: &BTreeMap<String, String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(env.len() + 2);
    if !env.contains_key("PATH") {
        out.push(format!("PATH={DEFAULT_PATH}"));
    }
    out.extend(
        env.iter()
            .filter(|(k, _)| k.as_str() != "HOME")
            .map(|(k, v)| format!("{k}={v}")),
    );
    out.push(format!("HOME={WORKSPACE}"));
    out
}

/// Gives a tree to `uid` without following symlinks (a link planted by the
/// repository must not hand a host file to the container's user).
fn chown_tree(dir: &Path, uid: u32) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.uid() != uid || meta.gid() != uid {
        std::os::unix::fs::lchown(dir, Some(uid), Some(uid))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let ft = entry.file_type()?;
            if ft.is_dir() {
                chown_tree(&entry.path(), uid)?;
            } else {
                // What the container wrote is its own already: only look
                // (lstat), since a chown even to the same owner writes the
                // inode, and a warm dependency cache holds thousands.
                let m = entry.metadata()?;
                if m.uid() != uid || m.gid() != uid {
                    std::os::unix::fs::lchown(entry.path(), Some(uid), Some(uid))?;
                }
            }
        }
    }
    Ok(())
}

async fn kill(runc: &Path, state: &Path, id: &str, signal: &str) {
    let _ = Command::new(runc)
        .arg("--root")
        .arg(state)
        .args(["kill", "--all", id, signal])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
}

async fn remove(runc: &Path, state: &Path, id: &str) {
    let _ = Command::new(runc)
        .arg("--root")
        .arg(state)
        .args(["delete", "--force", id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
}

/// Removes a container (and its bundle) if the step's future is dropped mid-run.
struct ContainerGuard {
    runc: PathBuf,
    state_dir: PathBuf,
    id: Option<String>,
    bundle: PathBuf,
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let _ = std::process::Command::new(&self.runc)
                .arg("--root")
                .arg(&self.state_dir)
                .args(["delete", "--force", &id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = std::fs::remove_dir_all(&self.bundle);
        }
    }
}

/// Ends every container whose id starts with `prefix` (what a previous run of
/// this instance left when it died) and returns their ids.
pub async fn sweep(runc: &Path, state_dir: &Path, prefix: &str) -> Vec<String> {
    let Ok(out) = Command::new(runc)
        .arg("--root")
        .arg(state_dir)
        .args(["list", "--quiet"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await
    else {
        return Vec::new();
    };
    let mut ended = Vec::new();
    for id in String::from_utf8_lossy(&out.stdout).lines().map(str::trim) {
        if !id.is_empty() && id.starts_with(prefix) {
            remove(runc, state_dir, id).await;
            ended.push(id.to_string());
        }
    }
    ended
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_working_directory_must_be_inside_the_workspace() {
        let ws = Path::new("/data/builds/7");
        assert_eq!(container_cwd(ws, Path::new("/data/builds/7")).unwrap(), "/workspace");
        assert_eq!(
            container_cwd(ws, Path::new("/data/builds/7/web/app")).unwrap(),
            "/workspace/web/app"
        );
        assert!(container_cwd(ws, Path::new("/data/builds/8")).is_none());
        assert!(container_cwd(ws, Path::new("/data/builds/7/../8")).is_none());
    }

    #[test]
    fn home_is_the_workspace_and_path_has_a_default() {
        let env = BTreeMap::from([("HOME".to_string(), "/root".to_string()), ("A".into(), "1".into())]);
        let out = container_env(&env);
        assert!(out.contains(&"HOME=/workspace".to_string()));
        assert!(!out.contains(&"HOME=/root".to_string()));
        assert!(out.iter().any(|e| e.starts_with("PATH=")));
        assert!(out.contains(&"A=1".to_string()));
    }
}
