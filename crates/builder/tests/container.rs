//! Hostile build steps in the contained runner (real runc, a busybox root
//! filesystem as the builder image): each is contained, and the log or the
//! outcome says what happened. Needs root, runc, busybox and slirp4netns
//! (scripts/test.sh installs them).

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prism_builder::container::{sweep, Cache, ContainerConfig, ContainerExecutor, Limits, Network};
use prism_builder::{BuildStep, CancellationToken, ExecOutcome, Executor, MemoryLogSink, Stream};

const SECRET: &str = "sealing-key-that-must-never-leak-4711";
static NEXT_ID: AtomicU32 = AtomicU32::new(0);

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    exec: ContainerExecutor,
    config: ContainerConfig,
}

/// A busybox root filesystem: the builder image of these tests.
fn rootfs(dir: &Path) {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox (Debian's busybox-static) is installed");
    for d in ["bin", "etc", "proc", "dev", "tmp", "workspace", "cache"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy(busybox, dir.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "cat", "ls", "echo", "sleep", "head", "tr", "nc", "id", "touch", "wc", "grep", "ps", "dd", "rm", "mkdir",
    ] {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/workspace:/bin/sh\n").unwrap();
    std::fs::write(dir.join("etc/resolv.conf"), "").unwrap();
}

fn fixture(network: Network, limits: Limits) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    // What sits beside the workspace on Prism's host: the data dir's secrets.
    let data = root.join("data");
    std::fs::create_dir_all(data.join("builds/b1")).unwrap();
    std::fs::write(data.join("secret.key"), SECRET).unwrap();
    std::fs::write(data.join("prism.db"), SECRET).unwrap();
    rootfs(&root.join("image"));
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let config = ContainerConfig {
        runc: "runc".into(),
        state_dir: root.join("runc-state"),
        bundle_dir: root.join("bundles"),
        rootfs: root.join("image"),
        workspace: data.join("builds/b1"),
        caches: vec![Cache {
            host: root.join("caches/npm"),
            container: "/cache/npm".into(),
        }],
        host_id: 300_000 + n * 65_536 + std::process::id() % 1000 * 16 * 65_536 % 10_000_000,
        cgroup_parent: "prism-test-builds".into(),
        limits,
        network,
        id_prefix: format!("prism-test-{}-{n}-", std::process::id()),
        grace: Duration::from_secs(2),
    };
    Fixture {
        _tmp: tmp,
        root,
        exec: ContainerExecutor::new(config.clone()),
        config,
    }
}

fn slirp() -> Network {
    Network::UserMode {
        slirp4netns: "slirp4netns".into(),
    }
}

impl Fixture {
    async fn run(&self, command: &str, timeout: Duration) -> (ExecOutcome, Arc<MemoryLogSink>) {
        self.run_with(command, timeout, CancellationToken::new()).await
    }

    async fn run_with(
        &self,
        command: &str,
        timeout: Duration,
        cancel: CancellationToken,
    ) -> (ExecOutcome, Arc<MemoryLogSink>) {
        let log = Arc::new(MemoryLogSink::new());
        let step = BuildStep {
            name: "build".into(),
            command: command.into(),
            workdir: self.config.workspace.clone(),
            env: BTreeMap::from([("NODE_ENV".to_string(), "production".to_string())]),
            timeout,
        };
        let outcome = self.exec.run(step, log.clone(), cancel).await.expect("the step runs");
        (outcome, log)
    }

    /// Host processes running as the container's uids.
    fn container_processes(&self) -> Vec<u32> {
        let lo = self.config.host_id;
        let hi = lo + 65_536;
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::metadata(format!("/proc/{pid}"))
                    .map(|m| m.uid() >= lo && m.uid() < hi)
                    .unwrap_or(false)
            })
            .collect()
    }

    fn leftover_containers(&self) -> String {
        let out = std::process::Command::new("runc")
            .arg("--root")
            .arg(&self.config.state_dir)
            .args(["list", "--quiet"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

fn all_text(log: &MemoryLogSink) -> String {
    log.lines()
        .iter()
        .map(|l| l.line.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_build_sees_its_workspace_and_nothing_of_the_host() {
    let f = fixture(Network::None, Limits::default());
    std::fs::write(f.config.workspace.join("package.json"), "{}").unwrap();
    let script = r#"
        echo "uid=$(id -u)"
        cat ../secret.key ../prism.db /workspace/../secret.key 2>&1
        cat /proc/1/environ | tr '\0' '\n'
        for p in /proc/[0-9]*; do cat $p/environ 2>/dev/null | tr '\0' '\n'; done
        ls / | tr '\n' ' '; echo
        echo "pids: $(ls -d /proc/[0-9]* | wc -l)"
        ls /root/.docker/config.json 2>&1
        echo owned > /etc/owned 2>&1 || echo "etc is read-only"
        echo owned > /bin/owned 2>&1 || echo "bin is read-only"
        echo built > /workspace/out.txt
        echo cached > /cache/npm/pkg
        test -f package.json && echo "workspace readable"
    "#;
    // Something in Prism's own environment the build must not see.
    std::env::set_var("PRISM_SECRET_KEY", SECRET);
    let (outcome, log) = f.run(script, Duration::from_secs(30)).await;
    let text = all_text(&log);
    assert_eq!(outcome, ExecOutcome::Exited(0), "{text}");
    assert!(!text.contains(SECRET), "a host secret reached the build:\n{text}");
    assert!(text.contains("uid=0"), "{text}");
    assert!(text.contains("NODE_ENV=production"), "{text}");
    assert!(text.contains("HOME=/workspace"), "{text}");
    assert!(
        text.contains("etc is read-only") && text.contains("bin is read-only"),
        "{text}"
    );
    assert!(text.contains("workspace readable"), "{text}");
    // Only the build's own processes: its shell and what it runs.
    let pids: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("pids: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pids <= 6, "the build sees {pids} processes:\n{text}");
    // Writes land in the workspace and the cache, and nowhere else.
    assert_eq!(
        std::fs::read_to_string(f.config.workspace.join("out.txt")).unwrap(),
        "built\n"
    );
    assert_eq!(
        std::fs::read_to_string(f.root.join("caches/npm/pkg")).unwrap(),
        "cached\n"
    );
    assert!(!f.root.join("image/etc/owned").exists());
    assert_eq!(std::fs::read_to_string(f.root.join("data/secret.key")).unwrap(), SECRET);
    // Root inside is an unprivileged uid outside.
    let owner = std::fs::metadata(f.config.workspace.join("out.txt")).unwrap().uid();
    assert_eq!(owner, f.config.host_id);
    assert_eq!(f.leftover_containers(), "");
}

#[tokio::test]
async fn a_symlink_in_the_workspace_does_not_reach_the_host() {
    let f = fixture(Network::None, Limits::default());
    std::os::unix::fs::symlink("../../secret.key", f.config.workspace.join("key")).unwrap();
    std::os::unix::fs::symlink("/", f.config.workspace.join("hostroot")).unwrap();
    let (outcome, log) = f
        .run(
            "cat key 2>&1; ls hostroot/ | tr '\\n' ' '; cat hostroot/../secret.key 2>&1; true",
            Duration::from_secs(30),
        )
        .await;
    let text = all_text(&log);
    assert_eq!(outcome, ExecOutcome::Exited(0));
    assert!(!text.contains(SECRET), "{text}");
    // The chown before the step does not follow the links either.
    assert_ne!(
        std::fs::metadata(f.root.join("data/secret.key")).unwrap().uid(),
        f.config.host_id
    );
}

/// A listener on the host's loopback, counting the connections it gets.
fn host_listener() -> (u16, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let hit = Arc::new(AtomicBool::new(false));
    let h = hit.clone();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            h.store(true, Ordering::SeqCst);
            let mut b = [0u8; 16];
            let _ = s.read(&mut b);
        }
    });
    (port, hit)
}

#[tokio::test]
async fn the_hosts_loopback_services_are_out_of_reach() {
    let (port, hit) = host_listener();
    for network in [Network::None, slirp()] {
        let f = fixture(network.clone(), Limits::default());
        let script = format!(
            "for h in 127.0.0.1 10.0.2.2 10.0.2.3; do echo x | nc -w 2 $h {port} && echo \"REACHED $h\"; done; true"
        );
        let (outcome, log) = f.run(&script, Duration::from_secs(30)).await;
        let text = all_text(&log);
        assert_eq!(outcome, ExecOutcome::Exited(0), "{network:?}: {text}");
        assert!(!text.contains("REACHED"), "{network:?}: {text}");
    }
    assert!(!hit.load(Ordering::SeqCst), "a build connected to the host's loopback");
}

#[tokio::test]
async fn user_mode_networking_gives_the_build_a_route_out() {
    // The container has an interface and a default route (slirp4netns); the
    // loopback-only mode has neither. No outside host is contacted here.
    let f = fixture(slirp(), Limits::default());
    let (_, log) = f
        .run(
            "cat /proc/net/route; ls /sys/class/net 2>/dev/null; cat /proc/net/dev",
            Duration::from_secs(30),
        )
        .await;
    let text = all_text(&log);
    assert!(text.contains("tap0"), "{text}");
    let f = fixture(Network::None, Limits::default());
    let (_, log) = f.run("cat /proc/net/dev", Duration::from_secs(30)).await;
    let text = all_text(&log);
    assert!(!text.contains("tap0") && text.contains("lo:"), "{text}");
}

#[tokio::test]
async fn a_fork_bomb_hits_the_process_limit_and_the_next_build_runs() {
    let limits = Limits {
        pids: 64,
        ..Limits::default()
    };
    let f = fixture(Network::None, limits);
    let started = Instant::now();
    let (outcome, log) = f
        .run(
            "bomb() { bomb | bomb & }; bomb; sleep 2; echo survived",
            Duration::from_secs(10),
        )
        .await;
    let text = all_text(&log);
    assert!(
        text.contains("can't fork") || text.contains("Resource temporarily unavailable"),
        "{outcome:?} {text}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(f.container_processes().is_empty(), "bomb processes left on the host");
    let (outcome, _) = f.run("echo fine", Duration::from_secs(30)).await;
    assert_eq!(outcome, ExecOutcome::Exited(0));
}

#[tokio::test]
async fn memory_past_the_limit_is_an_oom_kill_with_the_limit_named() {
    let limits = Limits {
        memory_bytes: 48 << 20,
        ..Limits::default()
    };
    let f = fixture(Network::None, limits);
    let (outcome, log) = f
        .run(
            "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}",
            Duration::from_secs(60),
        )
        .await;
    let text = all_text(&log);
    assert_eq!(outcome, ExecOutcome::OutOfMemory { limit_bytes: 48 << 20 }, "{text}");
    assert!(text.contains("OOMKilled") && text.contains("limit 48 MiB"), "{text}");
}

#[tokio::test]
async fn processes_left_running_end_with_the_step() {
    let f = fixture(Network::None, Limits::default());
    let (outcome, _) = f
        .run("sleep 300 & sleep 301 & echo started; exit 0", Duration::from_secs(30))
        .await;
    assert_eq!(outcome, ExecOutcome::Exited(0));
    assert!(f.container_processes().is_empty(), "processes of the step outlived it");
    assert_eq!(f.leftover_containers(), "");
}

#[tokio::test]
async fn exit_codes_timeouts_and_cancel() {
    let f = fixture(Network::None, Limits::default());
    let (outcome, log) = f.run("echo failing >&2; exit 3", Duration::from_secs(30)).await;
    assert_eq!(outcome, ExecOutcome::Exited(3), "{}", all_text(&log));

    let started = Instant::now();
    let (outcome, log) = f.run("sleep 300", Duration::from_millis(800)).await;
    assert_eq!(outcome, ExecOutcome::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(log.stream(Stream::System).iter().any(|l| l.contains("timed out")));
    assert!(f.container_processes().is_empty());

    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.cancel();
    });
    let (outcome, _) = f.run_with("sleep 300", Duration::from_secs(60), cancel).await;
    assert_eq!(outcome, ExecOutcome::Cancelled);
    assert!(f.container_processes().is_empty());
    assert_eq!(f.leftover_containers(), "");
}

#[tokio::test]
async fn a_step_whose_future_is_dropped_leaves_no_container() {
    let f = fixture(Network::None, Limits::default());
    let run = f.run("sleep 300", Duration::from_secs(60));
    // Dropped mid-run, as when the job's task is aborted.
    let _ = tokio::time::timeout(Duration::from_millis(1500), run).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f.container_processes().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(f.container_processes().is_empty());
    assert_eq!(f.leftover_containers(), "");
}

#[tokio::test]
async fn sweep_ends_containers_a_previous_run_left() {
    let f = fixture(Network::None, Limits::default());
    // A container started the way the executor starts them, then abandoned
    // (Prism was killed): detached, still running.
    let bundle = f.root.join("orphan");
    std::fs::create_dir_all(&bundle).unwrap();
    let cfg = prism_builder::container::spec::config(&prism_builder::container::spec::SpecInput {
        rootfs: &f.config.rootfs,
        args: vec!["/bin/sleep".into(), "300".into()],
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        binds: vec![],
        host_id: f.config.host_id,
        id_count: 65_536,
        netns_path: None,
        cgroups_path: format!("/prism-test-builds/orphan-{}", std::process::id()),
        tmp_bytes: 1 << 20,
    });
    std::fs::write(bundle.join("config.json"), cfg.to_string()).unwrap();
    let id = format!("{}orphan", f.config.id_prefix);
    let st = std::process::Command::new("runc")
        .arg("--root")
        .arg(&f.config.state_dir)
        .args(["run", "--detach", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    assert!(!f.container_processes().is_empty());
    let ended = sweep(Path::new("runc"), &f.config.state_dir, &f.config.id_prefix).await;
    assert_eq!(ended, vec![id]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f.container_processes().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(f.container_processes().is_empty());
    assert_eq!(f.leftover_containers(), "");
    // Another instance's containers are not touched.
    assert!(sweep(Path::new("runc"), &f.config.state_dir, "prism-other-")
        .await
        .is_empty());
}
