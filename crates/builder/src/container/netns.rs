//! A network namespace whose only way out is user-mode networking
//! (slirp4netns) with the host's loopback disabled: a build can download its
//! dependencies but cannot reach Prism's API, its database, or anything else
//! listening on the host's 127.0.0.1.
//!
//! The namespace is held open by a small holder process (`unshare --net`), so
//! no mount under /run/netns is left behind if Prism dies; both processes are
//! killed on drop.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A prepared network namespace; the container joins it by [`UserNet::path`].
pub struct UserNet {
    holder: Child,
    slirp: Child,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("could not start {what}: {source}")]
    Spawn {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("slirp4netns did not come up: {0}")]
    NotReady(String),
}

impl UserNet {
    pub async fn start(slirp4netns: &std::path::Path) -> Result<Self, NetError> {
        let mut holder = Command::new("unshare");
        die_with_parent(&mut holder);
        let holder = holder
            .args(["--net", "--", "sleep", "86400"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| NetError::Spawn {
                what: "unshare",
                source,
            })?;
        let pid = holder.id().ok_or_else(|| NetError::NotReady("holder exited".into()))?;
        let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
        // Wait until the holder really is in its own namespace.
        let own = std::fs::read_link("/proc/self/ns/net").ok();
        for _ in 0..200 {
            let theirs = std::fs::read_link(&path).ok();
            if theirs.is_some() && theirs != own {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (ready_r, ready_w) = pipe().map_err(|source| NetError::Spawn { what: "pipe", source })?;
        let mut cmd = Command::new(slirp4netns);
        die_with_parent(&mut cmd);
        cmd.args([
            "--configure",
            "--mtu=65520",
            "--disable-host-loopback",
            "--netns-type=path",
        ])
        .arg(format!("--ready-fd={}", ready_w.fd))
        .arg(&path)
        .arg("tap0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
        let slirp = cmd.spawn().map_err(|source| NetError::Spawn {
            what: "slirp4netns",
            source,
        })?;
        drop(ready_w);
        let ready = tokio::task::spawn_blocking(move || ready_r.read_one_byte())
            .await
            .unwrap_or(false);
        let net = Self { holder, slirp, path };
        if !ready {
            return Err(NetError::NotReady("no readiness signal".into()));
        }
        Ok(net)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for UserNet {
    fn drop(&mut self) {
        let _ = self.slirp.start_kill();
        let _ = self.holder.start_kill();
    }
}

/// The kernel kills the process when Prism's thread that started it ends,
/// so a Prism killed with SIGKILL leaves no namespace holder or slirp4netns
/// behind (the container itself is removed by the sweep at the next start).
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

struct Fd {
    fd: i32,
}

impl Fd {
    fn read_one_byte(self) -> bool {
        let mut b = [0u8; 1];
        // SAFETY: reading into a valid one-byte buffer from a pipe we own.
        let n = unsafe { libc::read(self.fd, b.as_mut_ptr().cast(), 1) };
        n == 1
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: closing a descriptor this struct owns.
        unsafe {
            libc::close(self.fd);
        }
    }
}

/// A pipe whose write end is inherited by the child (no CLOEXEC) and whose read end is not.
fn pipe() -> std::io::Result<(Fd, Fd)> {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: setting FD_CLOEXEC on the read end we own.
    unsafe {
        libc::fcntl(fds[0], libc::F_SETFD, libc::FD_CLOEXEC);
    }
    Ok((Fd { fd: fds[0] }, Fd { fd: fds[1] }))
}
