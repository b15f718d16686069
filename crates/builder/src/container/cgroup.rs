//! The cgroup a build container runs under, made by Prism with the build's
//! limits. runc puts the container in a child of it and removes that child
//! when the container ends; this parent outlives it, so whether the kernel
//! killed the build for memory can still be read, and then it is removed.
//! cgroup v1 (one hierarchy per controller) and v2 (unified) are both handled.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Limits of one build container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: u64,
    /// CPU in thousandths of a core (1000 = one core).
    pub cpu_millis: u64,
    pub pids: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 2 << 30,
            cpu_millis: 2000,
            pids: 1024,
        }
    }
}

const ROOT: &str = "/sys/fs/cgroup";
const PERIOD_US: u64 = 100_000;

/// A cgroup made for one container; removed on drop.
#[derive(Debug)]
pub struct BuildCgroup {
    /// Relative path under each hierarchy, e.g. `prism-builds/b7-1`.
    relative: String,
    made: Vec<PathBuf>,
    v2: bool,
}

impl BuildCgroup {
    /// Makes `<parent>/<name>` with `limits` in every controller it needs.
    pub fn create(parent: &str, name: &str, limits: Limits) -> io::Result<Self> {
        let relative = format!("{}/{name}", parent.trim_matches('/'));
        let v2 = Path::new(ROOT).join("cgroup.controllers").exists();
        let mut cg = Self {
            relative,
            made: Vec::new(),
            v2,
        };
        if v2 {
            cg.create_v2(parent, limits)?;
        } else {
            cg.create_v1(limits)?;
        }
        Ok(cg)
    }

    /// The path runc is given for the container's own cgroup (a child of this one).
    pub fn container_path(&self) -> String {
        format!("/{}/ctr", self.relative)
    }

    fn create_v1(&mut self, l: Limits) -> io::Result<()> {
        let memory = self.make(Path::new(ROOT).join("memory"))?;
        fs::write(memory.join("memory.limit_in_bytes"), l.memory_bytes.to_string())?;
        // Without swap accounting this file is absent; the limit above still holds.
        let _ = fs::write(memory.join("memory.memsw.limit_in_bytes"), l.memory_bytes.to_string());
        let pids = self.make(Path::new(ROOT).join("pids"))?;
        fs::write(pids.join("pids.max"), l.pids.to_string())?;
        let cpu = self.make(Path::new(ROOT).join("cpu"))?;
        fs::write(cpu.join("cpu.cfs_period_us"), PERIOD_US.to_string())?;
        fs::write(
            cpu.join("cpu.cfs_quota_us"),
            (l.cpu_millis * PERIOD_US / 1000).to_string(),
        )?;
        Ok(())
    }

    fn create_v2(&mut self, parent: &str, l: Limits) -> io::Result<()> {
        // Controllers must be enabled in every ancestor's subtree_control.
        let mut dir = PathBuf::from(ROOT);
        for part in parent.trim_matches('/').split('/').filter(|p| !p.is_empty()) {
            let _ = fs::write(dir.join("cgroup.subtree_control"), "+memory +pids +cpu");
            dir = dir.join(part);
            if !dir.exists() {
                fs::create_dir(&dir)?;
            }
        }
        let _ = fs::write(dir.join("cgroup.subtree_control"), "+memory +pids +cpu");
        let me = self.make(PathBuf::from(ROOT))?;
        fs::write(me.join("memory.max"), l.memory_bytes.to_string())?;
        let _ = fs::write(me.join("memory.swap.max"), "0");
        fs::write(me.join("pids.max"), l.pids.to_string())?;
        fs::write(
            me.join("cpu.max"),
            format!("{} {PERIOD_US}", l.cpu_millis * PERIOD_US / 1000),
        )?;
        fs::write(me.join("cgroup.subtree_control"), "+memory +pids +cpu")?;
        Ok(())
    }

    fn make(&mut self, hierarchy: PathBuf) -> io::Result<PathBuf> {
        let dir = hierarchy.join(&self.relative);
        fs::create_dir_all(&dir)?;
        self.made.push(dir.clone());
        Ok(dir)
    }

    /// Whether the kernel killed a process here for exceeding the memory
    /// limit. cgroup v2 counts that in `memory.events` up the tree. In v1
    /// the `oom_kill` count lands in runc's own child cgroup, which is gone
    /// by now; what stays here is `failcnt` (the times the limit was hit)
    /// and the peak usage. Reclaiming page cache also reaches the limit, so
    /// in v1 that counts as an OOM kill only when the container's first
    /// process died of SIGKILL (which Prism did not send).
    pub fn killed_for_memory(&self, sigkilled: bool) -> bool {
        if self.v2 {
            let events =
                fs::read_to_string(Path::new(ROOT).join(&self.relative).join("memory.events")).unwrap_or_default();
            return counter(&events, "oom_kill") > 0;
        }
        let memory = Path::new(ROOT).join("memory").join(&self.relative);
        let control = fs::read_to_string(memory.join("memory.oom_control")).unwrap_or_default();
        if counter(&control, "oom_kill") > 0 {
            return true;
        }
        // With swap accounting the combined limit is the one hit (memsw.failcnt).
        let read = |f: &str| -> u64 {
            fs::read_to_string(memory.join(f))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0)
        };
        let hits = read("memory.failcnt") + read("memory.memsw.failcnt");
        let peaked = read("memory.max_usage_in_bytes") >= read("memory.limit_in_bytes");
        sigkilled && (hits > 0 || peaked)
    }
}

fn counter(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        })
        .unwrap_or(0)
}

impl Drop for BuildCgroup {
    fn drop(&mut self) {
        // Children first (runc's own, if it left it), then ours.
        for dir in self.made.iter().rev() {
            let _ = fs::remove_dir(dir.join("ctr"));
            let _ = fs::remove_dir(dir);
        }
    }
}
