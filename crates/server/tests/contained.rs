//! Hostile builds on the local runner, through the real server (in-process,
//! SQLite, its key and database in the data dir beside the workspaces), a
//! real registry, a real git server and real runc: each build command is
//! contained (nothing of the host read, nothing written, the host's loopback
//! services unreachable, its processes gone when it ends), and the log says
//! what happened. Also: builds past PRISM_BUILD_CONCURRENCY wait with their
//! place in the queue shown. Needs root, runc, slirp4netns and busybox
//! (scripts/test.sh installs them).

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use prism_test_support::git as git_support;
use prism_test_support::registry as registry_support;
use prism_test_support::{Backend, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// In the server's (this process's) environment: a build must not see it.
const HOST_ENV_SECRET: &str = "host-env-secret-0b7e4d";
const DOCKER_SECRET: &str = "docker-config-secret-9f1c";
/// Root in a build container is this uid on the host (the server's default).
const BUILD_UID: u32 = 100_000;
/// One test at a time: both look for build processes by the same host uids.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn wait_build(app: &TestApp, id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (s, v) = app.get(&format!("/api/v1/builds/{id}"), &app.admin).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if ["succeeded", "failed", "cancelled"].contains(&v["state"].as_str().unwrap_or("")) {
            return v;
        }
        assert!(Instant::now() < deadline, "build {id} never ended: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn log_of(app: &TestApp, id: i64) -> String {
    let (s, v) = app
        .get(&format!("/api/v1/builds/{id}/log?limit=10000"), &app.admin)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v.as_array()
        .unwrap_or_else(|| v["lines"].as_array().expect("log lines"))
        .iter()
        .map(|l| l["line"].as_str().unwrap_or("").to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Host processes running as a build container's uids.
fn container_processes() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}"))
                .map(|m| m.uid() >= BUILD_UID && m.uid() < BUILD_UID + 65_536)
                .unwrap_or(false)
        })
        .collect()
}

struct World {
    _registry: registry_support::TestRegistry,
    _git: git_support::GitDaemon,
    _tmp: tempfile::TempDir,
}

/// A registry, a busybox base (the builder image), a git repository, and
/// application `app` of project `alpha` building it with `settings`.
async fn world(app: &TestApp, apps: &[&str]) -> World {
    let tmp = tempfile::tempdir().unwrap();
    let sources = app.data_dir.join("base-sources");
    std::fs::create_dir_all(&sources).unwrap();
    registry_support::busybox_rootfs(&sources);
    let registry = registry_support::TestRegistry::start(None);
    let git_root = tmp.path().join("git");
    let work = git_root.join("site-work");
    std::fs::create_dir_all(&work).unwrap();
    git_support::git(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("index.html"), "<h1>hi</h1>\n").unwrap();
    git_support::git(&work, &["add", "-A"]);
    git_support::git(&work, &["commit", "-q", "-m", "one"]);
    git_support::git(&git_root, &["clone", "-q", "--bare", "site-work", "site.git"]);
    let git = git_support::GitDaemon::start(&git_root).await;
    app.ok(
        Method::PUT,
        "/api/v1/registries/main",
        &app.admin,
        Some(json!({"host": format!("127.0.0.1:{}", registry.port), "insecure_http": true, "all_projects": true})),
    )
    .await;
    app.ok(
        Method::POST,
        "/api/v1/base-images",
        &app.admin,
        Some(
            json!({"name": "busybox", "tier": 1, "registry": "main", "repository": "base/busybox",
                    "recipe": {"rootfs": "rootfs.tar"}}),
        ),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, b) = app.get("/api/v1/base-images/busybox", &app.admin).await;
        if b["build_state"] == "succeeded" {
            break;
        }
        assert_ne!(b["build_state"], "failed", "{b}");
        assert!(Instant::now() < deadline, "{b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (i, name) in apps.iter().enumerate() {
        if i == 0 {
            app.project_with_app("alpha", name).await;
        } else {
            app.ok(
                Method::POST,
                "/api/v1/applications",
                &app.admin,
                Some(json!({"project": "alpha", "name": name, "git_url": git.url("site.git")})),
            )
            .await;
        }
        app.ok(
            Method::PATCH,
            &format!("/api/v1/applications/{name}"),
            &app.admin,
            Some(json!({"git_url": git.url("site.git")})),
        )
        .await;
    }
    World {
        _registry: registry,
        _git: git,
        _tmp: tmp,
    }
}

/// Builds a new release of `app_name` with `settings` over the static stack; returns the ended build and its log.
async fn build(app: &TestApp, app_name: &str, settings: Value) -> (Value, String) {
    let id = start(app, app_name, settings).await;
    let b = wait_build(app, id).await;
    let log = log_of(app, id).await;
    (b, log)
}

async fn start(app: &TestApp, app_name: &str, settings: Value) -> i64 {
    let mut s =
        json!({"stack": "static", "base_image": "busybox", "registry": "main", "artifact_paths": ["index.html"]});
    s.as_object_mut().unwrap().extend(settings.as_object().unwrap().clone());
    app.ok(
        Method::PATCH,
        &format!("/api/v1/applications/{app_name}"),
        &app.admin,
        Some(json!({"build_settings": s})),
    )
    .await;
    let created = app
        .ok(
            Method::POST,
            "/api/v1/releases",
            &app.admin,
            Some(json!({"application": app_name, "git_ref": "main", "change_note": "x", "build": true})),
        )
        .await;
    created["build"]["id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_builds_are_contained_and_the_log_says_what_happened() {
    let _serial = SERIAL.lock().await;
    // Set before the server starts: its own environment, which /proc/<pid>/environ shows.
    std::env::set_var("PRISM_TEST_HOST_SECRET", HOST_ENV_SECRET);
    let app = TestApp::spawn(Backend::Sqlite).await;
    let _w = world(&app, &["web"]).await;
    let data = app.data_dir.clone();
    let key = std::fs::read(data.join("secret.key")).unwrap();
    let key_text = String::from_utf8_lossy(&key).trim().to_string();
    assert!(key_text.len() >= 16);
    assert!(data.join("prism.db").exists());
    let docker = data.join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"x":{{"auth":"{DOCKER_SECRET}"}}}}}}"#),
    )
    .unwrap();
    let api_port = app.base.rsplit(':').next().unwrap().to_string();
    let d = data.display();
    // Every read, write and connection an attacker with developer rights would try.
    let script = format!(
        "cat ../../../secret.key ../../secret.key {d}/secret.key; \
         head -c 64 {d}/prism.db; head -c 64 ../../../prism.db; \
         cat /proc/1/environ; for p in /proc/[0-9]*; do cat $p/environ; done; echo; \
         cat {d}/docker/config.json /root/.docker/config.json; \
         echo pwned > {d}/pwned; echo pwned > ../../../pwned; echo pwned > /etc/pwned; echo pwned > /pwned; \
         for h in 127.0.0.1 10.0.2.2; do for port in {api_port} 5432; do \
           nc -w 2 $h $port </dev/null && echo \"REACHED $h:$port\" || echo \"refused $h:$port\"; done; done; \
         (sleep 300 &); sleep 301 & echo left-running; \
         echo pwned > /workspace/mine && echo wrote-own-workspace; true"
    );
    let (b, log) = build(&app, "web", json!({"build_command": script})).await;
    assert_eq!(b["state"], "succeeded", "{b}\n{log}");
    // Nothing read.
    assert!(!log.contains(&key_text), "the sealing key leaked:\n{log}");
    assert!(!log.contains("SQLite format"), "the database was read:\n{log}");
    assert!(
        !log.contains(HOST_ENV_SECRET),
        "the server's environment leaked:\n{log}"
    );
    assert!(!log.contains(DOCKER_SECRET), "the docker config leaked:\n{log}");
    // ... and the log says why: the host's paths do not exist in the container.
    assert!(
        log.contains("can't open '../../../secret.key': No such file or directory"),
        "{log}"
    );
    assert!(log.contains("prism.db: No such file or directory"), "{log}");
    assert!(log.contains("config.json': No such file or directory"), "{log}");
    // Nothing written outside the workspace (the root is read-only), the workspace writable.
    assert!(!data.join("pwned").exists() && !std::path::Path::new("/pwned").exists());
    assert!(!std::path::Path::new("/etc/pwned").exists());
    assert!(log.contains("Read-only file system"), "{log}");
    assert!(log.contains("wrote-own-workspace"), "{log}");
    // The host's loopback services (Prism's API, PostgreSQL) are unreachable.
    assert!(!log.lines().any(|l| l.starts_with("REACHED")), "{log}");
    assert!(log.contains(&format!("refused 127.0.0.1:{api_port}")), "{log}");
    assert!(log.contains("refused 10.0.2.2:5432"), "{log}");
    // The builder image is recorded.
    assert_eq!(b["builder_image"], "busybox");
    assert!(b["builder_digest"].as_str().unwrap().starts_with("sha256:"), "{b}");
    let html = console_page(&app, &format!("/builds/{}", b["id"])).await;
    assert!(
        html.contains(r#"id="build-builder""#) && html.contains(b["builder_digest"].as_str().unwrap()),
        "{html}"
    );
    // What the command left running ended with it.
    assert!(log.contains("left-running"), "{log}");
    assert!(container_processes().is_empty(), "build processes outlived the build");

    // A fork bomb hits the pids limit; the server and the next build are unaffected.
    let started = Instant::now();
    let (b, log) = build(
        &app,
        "web",
        json!({"build_command": "bomb() { bomb | bomb & }; bomb; sleep 2; echo survived", "pids_limit": 64, "timeout_seconds": 20}),
    )
    .await;
    assert!(
        log.contains("can't fork") || log.contains("Resource temporarily unavailable"),
        "{b}\n{log}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(container_processes().is_empty(), "bomb processes left on the host");

    // Memory past the limit: an OOM kill, named with the limit.
    let (b, log) = build(
        &app,
        "web",
        json!({"build_command": "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}", "memory_limit": "48Mi"}),
    )
    .await;
    assert_eq!(b["state"], "failed", "{b}\n{log}");
    assert_eq!(b["failure_kind"], "build");
    assert!(b["error"].as_str().unwrap().contains("OOMKilled"), "{b}");
    assert!(log.contains("OOMKilled") && log.contains("limit 48 MiB"), "{log}");

    // The next build runs as usual.
    let (b, log) = build(&app, "web", json!({"build_command": "echo fine; id -u"})).await;
    assert_eq!(b["state"], "succeeded", "{b}\n{log}");
    assert!(log.contains("fine"), "{log}");
    app.stop().await;
}

/// A console page as the signed-in admin.
async fn console_page(app: &TestApp, path: &str) -> String {
    let resp = app
        .http
        .post(format!("{}/api/v1/auth/login", app.base))
        .json(&json!({"username": "admin", "password": prism_test_support::app::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("prism_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let page = app
        .http
        .get(format!("{}{path}", app.base))
        .header(reqwest::header::COOKIE, format!("prism_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    page.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_past_the_concurrency_limit_wait_with_their_place_shown() {
    let _serial = SERIAL.lock().await;
    std::env::set_var("PRISM_BUILD_CONCURRENCY", "1");
    let app = TestApp::spawn(Backend::Sqlite).await;
    let _w = world(&app, &["one", "two", "three"]).await;
    let first = start(&app, "one", json!({"build_command": "sleep 30"})).await;
    let second = start(&app, "two", json!({"build_command": "true"})).await;
    let third = start(&app, "three", json!({"build_command": "true"})).await;
    // The first one runs; the others wait in order.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, b) = app.get(&format!("/api/v1/builds/{first}"), &app.admin).await;
        if b["state"] == "building" {
            assert!(b.get("queue_position").is_none(), "{b}");
            break;
        }
        assert!(Instant::now() < deadline, "{b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, b2) = app.get(&format!("/api/v1/builds/{second}"), &app.admin).await;
    let (_, b3) = app.get(&format!("/api/v1/builds/{third}"), &app.admin).await;
    assert_eq!(
        (b2["state"].as_str(), b2["queue_position"].as_i64()),
        (Some("queued"), Some(1)),
        "{b2}"
    );
    assert_eq!(
        (b3["state"].as_str(), b3["queue_position"].as_i64()),
        (Some("queued"), Some(2)),
        "{b3}"
    );
    // Cancelling the running build lets the queue move on.
    app.post(&format!("/api/v1/builds/{first}/cancel"), &app.admin, json!({}))
        .await;
    assert_eq!(wait_build(&app, first).await["state"], "cancelled");
    assert_eq!(wait_build(&app, second).await["state"], "succeeded");
    assert_eq!(wait_build(&app, third).await["state"], "succeeded");
    assert!(container_processes().is_empty());
    app.stop().await;
}
