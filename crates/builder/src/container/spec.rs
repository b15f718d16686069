//! The OCI runtime configuration of a build container: what it may see and do.
//!
//! Everything is denied unless listed: a read-only root (the builder image),
//! the workspace and caches bound read-write, a private `/tmp`, no
//! capabilities, no new privileges, its own user namespace (root inside is an
//! unprivileged uid outside), and its own pid, mount, ipc, uts, cgroup and
//! network namespaces. The network namespace is a fresh one with only
//! loopback, or one prepared by [`super::netns`] whose only way out is
//! user-mode networking that cannot reach the host's loopback.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// Where a host directory appears inside the container.
#[derive(Debug, Clone)]
pub struct Bind {
    pub host: PathBuf,
    pub container: String,
    pub writable: bool,
}

/// The inputs of one container's configuration.
#[derive(Debug, Clone)]
pub struct SpecInput<'a> {
    pub rootfs: &'a Path,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub binds: Vec<Bind>,
    /// Host uid and gid that root inside the container maps to (a range of `id_count`).
    pub host_id: u32,
    pub id_count: u32,
    /// `None`: a fresh network namespace with loopback only.
    pub netns_path: Option<PathBuf>,
    pub cgroups_path: String,
    /// Size of the private `/tmp`, in bytes.
    pub tmp_bytes: u64,
}

/// Paths of /proc and /sys that leak host information or allow writes; the
/// same lists `runc spec` and container engines use.
const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];
const READONLY: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

pub fn config(input: &SpecInput<'_>) -> Value {
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "nodev", "mode=1777", format!("size={}", input.tmp_bytes)]}),
    ];
    for b in &input.binds {
        let mode = if b.writable { "rw" } else { "ro" };
        mounts.push(json!({
            "destination": b.container,
            "type": "bind",
            "source": b.host,
            "options": ["rbind", mode, "nosuid", "nodev"],
        }));
    }
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "user"}),
        json!({"type": "cgroup"}),
    ];
    namespaces.push(match &input.netns_path {
        Some(p) => json!({"type": "network", "path": p}),
        None => json!({"type": "network"}),
    });
    let no_caps: Vec<&str> = Vec::new();
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": input.args,
            "env": input.env,
            "cwd": input.cwd,
            "capabilities": {
                "bounding": no_caps, "effective": no_caps, "inheritable": no_caps,
                "permitted": no_caps, "ambient": no_caps,
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 4096}],
            "noNewPrivileges": true,
        },
        "root": {"path": input.rootfs, "readonly": true},
        "hostname": "build",
        "mounts": mounts,
        "linux": {
            "uidMappings": [{"containerID": 0, "hostID": input.host_id, "size": input.id_count}],
            "gidMappings": [{"containerID": 0, "hostID": input.host_id, "size": input.id_count}],
            "namespaces": namespaces,
            // Limits are set on the parent cgroup Prism made (see cgroup.rs), so
            // that an out-of-memory kill is still readable after runc removes its own.
            "cgroupsPath": input.cgroups_path,
            "maskedPaths": MASKED,
            "readonlyPaths": READONLY,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(netns: Option<PathBuf>) -> SpecInput<'static> {
        SpecInput {
            rootfs: Path::new("/images/abc/rootfs"),
            args: vec!["/bin/sh".into(), "-c".into(), "make".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/workspace".into(),
            binds: vec![Bind {
                host: "/data/builds/7".into(),
                container: "/workspace".into(),
                writable: true,
            }],
            host_id: 200_000,
            id_count: 65_536,
            netns_path: netns,
            cgroups_path: "/prism-builds/b7/ctr".into(),
            tmp_bytes: 1 << 20,
        }
    }

    #[test]
    fn nothing_privileged_is_granted() {
        let c = config(&input(None));
        for set in ["bounding", "effective", "inheritable", "permitted", "ambient"] {
            assert_eq!(c["process"]["capabilities"][set], json!([]), "{set}");
        }
        assert_eq!(c["process"]["noNewPrivileges"], true);
        assert_eq!(c["root"]["readonly"], true);
        assert_eq!(c["linux"]["uidMappings"][0]["hostID"], 200_000);
        assert_ne!(c["linux"]["uidMappings"][0]["hostID"], 0);
        let ns: Vec<&str> = c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        for want in ["pid", "ipc", "uts", "mount", "user", "cgroup", "network"] {
            assert!(ns.contains(&want), "{want} namespace missing");
        }
        // No /sys at all: the build has no business with the host's devices.
        let dests: Vec<&str> = c["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert!(!dests.iter().any(|d| d.starts_with("/sys")));
        assert!(dests.contains(&"/workspace") && dests.contains(&"/tmp"));
    }

    #[test]
    fn a_prepared_network_namespace_is_joined_by_path() {
        let c = config(&input(Some("/proc/42/ns/net".into())));
        let net = c["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["type"] == "network")
            .unwrap()
            .clone();
        assert_eq!(net["path"], "/proc/42/ns/net");
        let fresh = config(&input(None));
        let net = fresh["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["type"] == "network")
            .unwrap()
            .clone();
        assert!(net.get("path").is_none());
    }
}
