//! Crash recovery around builds and the data dir (issue 17), with the real
//! `prism serve`, a real git server and a real registry:
//! - a second `prism serve` on a data dir in use is refused at once, naming
//!   the data dir and the running process;
//! - a server killed with SIGKILL during a build leaves nothing running: at
//!   restart the process group of the first attempt (recorded before its
//!   command ran) is killed, the build's log says so, and the build runs again
//!   at once (default lease) and succeeds once.

use prism_test_support::git as git_support;
use prism_test_support::registry as registry_support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use git_support::{git, HttpGit};
use prism_test_support::process::{clean_command, healthy, ADMIN_PASSWORD};
use prism_test_support::{free_port, ServerProcess as Server};
use registry_support::{busybox_rootfs, TestRegistry};
use serde_json::{json, Value};

#[test]
fn a_second_serve_on_a_data_dir_in_use_is_refused_naming_it_and_the_running_process() {
    let first = Server::start("lock");
    let data = first.data_dir().to_path_buf();
    let started = Instant::now();
    let out = clean_command()
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port()), "--data-dir"])
        .arg(&data)
        .env("PRISM_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdin(Stdio::null())
        .output()
        .expect("run prism serve");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(!out.status.success(), "the second server must not start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&data.display().to_string()),
        "names the data dir: {stderr}"
    );
    assert!(
        stderr.contains(&format!("pid {}", first.child.id())),
        "names the running process: {stderr}"
    );
    assert!(healthy(first.port), "the first server is untouched");
}

/// Alive: exists and is not a zombie.
fn alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
        Ok(stat) => {
            let state = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().next());
            !matches!(state, Some("Z" | "X"))
        }
        Err(_) => false,
    }
}

fn repo(root: &Path, name: &str) {
    let work = root.join(format!("{name}-work"));
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("index.html"), "built once\n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "first"]);
    git(
        root,
        &["clone", "-q", "--bare", &format!("{name}-work"), &format!("{name}.git")],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_build_killed_with_the_server_leaves_nothing_running_and_runs_again_once() {
    let tmp = tempfile::tempdir().unwrap();
    let sources = tmp.path().join("sources");
    std::fs::create_dir_all(&sources).unwrap();
    busybox_rootfs(&sources);
    let registry = TestRegistry::start(None);
    let git_root = tmp.path().join("git");
    std::fs::create_dir_all(&git_root).unwrap();
    let git = HttpGit::start(&git_root, None).await;
    // The default lease (30 s): the restart must not wait for it.
    let mut server = Server::start_with(
        "crash-build",
        &[
            ("PRISM_BASE_SOURCES", sources.to_str().unwrap()),
            ("PRISM_DOCKER_CONFIG", "/nonexistent/config.json"),
            ("PRISM_JOB_POLL_MS", "200"),
            // The host-process runner's process groups are what this test is
            // about (and its command shares marker files with the test); the
            // contained runner's crash is in build_e2e.rs.
            ("PRISM_BUILD_RUNNER", "unsandboxed"),
        ],
    );
    server.login_admin();
    server
        .run(&[
            "registry",
            "put",
            "main",
            "--host",
            &format!("127.0.0.1:{}", registry.port),
            "--insecure-http",
            "--all-projects",
        ])
        .ok();
    server
        .run(&["project", "create", "shop", "--description", "The shop"])
        .ok();
    let recipe = tmp.path().join("busybox.json");
    std::fs::write(&recipe, json!({"rootfs": "rootfs.tar"}).to_string()).unwrap();
    server
        .run(&[
            "base",
            "create",
            "busybox",
            "--tier",
            "1",
            "--registry",
            "main",
            "--repository",
            "base/busybox",
            "--recipe",
            recipe.to_str().unwrap(),
        ])
        .ok();
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.run(&["base", "show", "busybox"]).json()["build_state"] != "succeeded" {
        assert!(Instant::now() < deadline, "base not built\n{}", server.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    repo(&git_root, "slow");
    let marker = tmp.path().join("first-attempt");
    let child_pid = tmp.path().join("first-attempt-child");
    // The first attempt records its shell's pid and a background child's, then waits;
    // a later attempt finds the marker and goes on.
    let command = format!(
        "if [ -s {m} ]; then echo second attempt; else sleep 600 & echo $! > {c}; echo $$ > {m}.tmp; mv {m}.tmp {m}; wait; fi",
        m = marker.display(),
        c = child_pid.display()
    );
    let settings = tmp.path().join("settings.json");
    std::fs::write(
        &settings,
        json!({"stack": "static", "base_image": "busybox", "registry": "main",
               "artifact_paths": ["index.html"], "build_command": command, "cmd": ["cat", "/app/index.html"]})
        .to_string(),
    )
    .unwrap();
    server
        .run(&[
            "app",
            "create",
            "slow",
            "--project",
            "shop",
            "--git-url",
            &git.url("slow.git"),
            "--build-settings",
            settings.to_str().unwrap(),
        ])
        .ok();
    let rel = server.json(&[
        "release", "create", "--app", "slow", "--ref", "main", "--note", "crash me", "--build",
    ]);
    let id = rel["build"]["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(
            Instant::now() < deadline,
            "the first attempt never started\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let shell = std::fs::read_to_string(&marker).unwrap();
    let child = std::fs::read_to_string(&child_pid).unwrap();
    assert!(alive(&shell) && alive(&child));

    server.crash_and_restart();
    let restarted = Instant::now();
    let log = |s: &Server| s.run(&["build", "log", &id.to_string()]).ok().stdout;
    let deadline = restarted + Duration::from_secs(5);
    while !log(&server).contains("starting again from a fresh workspace") {
        assert!(
            Instant::now() < deadline,
            "the build did not run again within 5 s of the restart:\n{}\n{}",
            log(&server),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !alive(&shell),
        "the first attempt's shell ({}) is still running",
        shell.trim()
    );
    assert!(
        !alive(&child),
        "the first attempt's child ({}) is still running",
        child.trim()
    );

    let deadline = Instant::now() + Duration::from_secs(120);
    let b: Value = loop {
        let b = server.json(&["build", "show", &id.to_string()]);
        if matches!(b["state"].as_str(), Some("succeeded" | "failed" | "cancelled")) {
            break b;
        }
        assert!(Instant::now() < deadline, "build {id} did not end: {b}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(b["state"], "succeeded", "{b}\n{}", server.log());
    let text = log(&server);
    assert!(
        text.contains("the server stopped during attempt 1 of this build; on restart it killed the processes"),
        "{text}"
    );
    assert_eq!(
        text.lines().filter(|l| *l == "second attempt").count(),
        1,
        "the build ran once more, once: {text}"
    );
    let builds = server.json(&["build", "list"]);
    assert_eq!(
        builds
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["release"] == rel["id"])
            .count(),
        1,
        "{builds}"
    );
}
