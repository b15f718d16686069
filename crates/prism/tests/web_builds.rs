//! Builds in the web console, with real parts only: `prism serve`, a real
//! git server (`git http-backend` behind Basic auth), a real registry
//! (Debian's `docker-registry` with htpasswd) and a busybox base Prism builds
//! from a root filesystem tarball, driven through headless Chromium. Every
//! step saves a screenshot under `web-screenshots/` in the build directory.

use prism_test_support::browser as web;
use prism_test_support::git as git_support;
use prism_test_support::jenkins as jenkins_double;
use prism_test_support::registry as registry_support;

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::redirect::Policy;
use reqwest::Client as Http;
use serde_json::{json, Value};

use git_support::{git, HttpGit};
use prism_test_support::console_login::{self, csrf_in};
use prism_test_support::process::ADMIN_PASSWORD;
use prism_test_support::ServerProcess as Server;
use registry_support::{busybox_rootfs, TestRegistry};
use web::{Api, Driver};

const GIT_USER: &str = "builder";
const GIT_PASSWORD: &str = "gitpw-web-secret";
const REGISTRY_USER: &str = "pusher";
const REGISTRY_PASSWORD: &str = "registry-pw-web";
const DEV_PW: &str = "developer-password";
const TESTER_PW: &str = "tester-password";

/// What the build command of `web` prints after a pause: it can only reach
/// an open page through the live stream. The command computes it, so the
/// log line quoting the command does not hold it.
const LIVE_LINE: &str = "live-line-42-from-the-build";
const LIVE_COMMAND: &str = "echo live-line-$((40 + 2))-from-the-build";

/// A bare repository `<root>/<name>.git` whose `main` holds `files`.
fn repo(root: &Path, name: &str, files: &[(&str, &str)]) {
    let work = root.join(format!("{name}-work"));
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    for (path, content) in files {
        std::fs::write(work.join(path), content).unwrap();
    }
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "first"]);
    git(
        root,
        &["clone", "-q", "--bare", &format!("{name}-work"), &format!("{name}.git")],
    );
}

/// What these tests add to the shared REST helper.
trait BuildsApi {
    async fn finished_build(&self, id: i64) -> Value;
    async fn built_base(&self, name: &str, not: Option<&str>) -> Value;
    async fn build_of(&self, release: &str) -> Value;
}

impl BuildsApi for Api {
    /// Waits until the build is no longer running.
    async fn finished_build(&self, id: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let b = self.call("GET", &format!("/builds/{id}"), Value::Null).await;
            if matches!(b["state"].as_str(), Some("succeeded" | "failed" | "cancelled")) {
                return b;
            }
            assert!(Instant::now() < deadline, "build {id} did not end: {b}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the base image is built with a digest other than `not`.
    async fn built_base(&self, name: &str, not: Option<&str>) -> Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let b = self.call("GET", &format!("/base-images/{name}"), Value::Null).await;
            match b["build_state"].as_str() {
                Some("succeeded") if b["digest"].as_str() != not => return b,
                Some("failed") => panic!("base {name} failed: {b}"),
                _ => {}
            }
            assert!(Instant::now() < deadline, "base {name} not built in time: {b}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The newest build of a release.
    async fn build_of(&self, release: &str) -> Value {
        let list = self
            .call("GET", &format!("/releases/{release}/builds"), Value::Null)
            .await;
        list[0].clone()
    }
}

/// A git server with `web` (whose build prints a line after a pause) and
/// `broken` (whose build fails on stderr, or hangs while `hang` exists), a
/// registry, a Prism-built busybox base, project `shop` with a developer
/// and a tester.
struct World {
    server: Server,
    api: Api,
    _registry: TestRegistry,
    git: HttpGit,
    tmp: tempfile::TempDir,
}

impl World {
    async fn start(name: &str) -> World {
        let tmp = tempfile::tempdir().unwrap();
        let sources = tmp.path().join("sources");
        std::fs::create_dir_all(&sources).unwrap();
        busybox_rootfs(&sources);
        let registry = TestRegistry::start(Some((REGISTRY_USER, REGISTRY_PASSWORD)));
        let git_root = tmp.path().join("git");
        std::fs::create_dir_all(&git_root).unwrap();
        let git = HttpGit::start(&git_root, Some((GIT_USER, GIT_PASSWORD))).await;
        let env = [
            ("PRISM_BASE_SOURCES", sources.to_str().unwrap().to_owned()),
            ("PRISM_DOCKER_CONFIG", "/nonexistent/config.json".to_owned()),
            ("PRISM_JENKINS_POLL_MS", "50".to_owned()),
        ];
        let name = name.to_owned();
        let server = tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            Server::start_with(&name, &env)
        })
        .await
        .unwrap();
        let api = Api::new(&server.url).await;
        api.call(
            "PUT",
            "/registries/main",
            json!({"host": format!("127.0.0.1:{}", registry.port), "insecure_http": true,
                   "username": REGISTRY_USER, "password": REGISTRY_PASSWORD, "all_projects": true}),
        )
        .await;
        api.call(
            "PUT",
            "/git-credentials/gitea",
            json!({"username": GIT_USER, "password": GIT_PASSWORD, "host": git.addr.to_string(), "all_projects": true}),
        )
        .await;
        api.call("POST", "/projects", json!({"name": "shop"})).await;
        api.call(
            "POST",
            "/base-images",
            json!({"name": "busybox", "tier": 1, "registry": "main", "repository": "base/busybox",
                   "recipe": {"rootfs": "rootfs.tar", "config": {"env": {"TZ": "UTC"}}}}),
        )
        .await;
        api.built_base("busybox", None).await;
        repo(&git_root, "web", &[("index.html", "<h1>shop</h1>\n")]);
        repo(&git_root, "broken", &[("index.html", "broken\n")]);
        for (app, command) in [
            (
                "web",
                format!("echo compiling the shop; sleep 4; {LIVE_COMMAND}; sleep 1; echo all done"),
            ),
            (
                "broken",
                // The dependency cache is the one host directory the
                // build sees (see `hang`).
                "echo about to fail; echo broken-on-stderr >&2; while [ -e \"$PRISM_CACHE_DIR/hang\" ]; do sleep 0.2; done; exit 3"
                    .to_string(),
            ),
        ] {
            api.call(
                "POST",
                "/applications",
                json!({"project": "shop", "name": app, "git_url": git.url(&format!("{app}.git")),
                       "build_settings": {"stack": "static", "base_image": "busybox", "registry": "main",
                                          "git_credential": "gitea", "artifact_paths": ["index.html"],
                                          "build_command": command}}),
            )
            .await;
        }
        for (user, pw, role) in [("dev", DEV_PW, "developer"), ("tess", TESTER_PW, "tester")] {
            api.call("POST", "/users", json!({"username": user, "password": pw}))
                .await;
            api.call(
                "POST",
                "/projects/shop/members",
                json!({"username": user, "role": role}),
            )
            .await;
        }
        World {
            server,
            api,
            _registry: registry,
            git,
            tmp,
        }
    }
}

/// Makes `broken`'s next build hang: a file in its dependency cache
/// (`<data dir>/build-caches/app-<id>-static`; every low id, the test does
/// not know which application got which).
fn hang(w: &World) {
    for id in 1..=10 {
        let dir = w.server.data_dir().join(format!("build-caches/app-{id}-static"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hang"), "").unwrap();
    }
}

/// Waits (up to `secs`) until the page shows the build in `state`, without
/// reloading it itself: the page's script follows the stream and reloads.
async fn wait_for_build_state(b: &web::Browser, state: &str, secs: u64) {
    let css = format!("#build-state[data-state={state}]");
    if let Err(e) = b
        .client
        .wait()
        .at_most(Duration::from_secs(secs))
        .for_element(fantoccini::Locator::Css(&css))
        .await
    {
        let now = b.text("#build-state").await;
        let log = b.text("#build-log-lines").await;
        panic!("the page never showed the build {state} ({e}); it shows {now}; log:\n{log}");
    }
}

/// Whether `text` has a line that is exactly `line`.
fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

/// The text of the page's log and whether the page is still the one loaded
/// when `window.prismMark` was set (not reloaded since).
async fn log_and_mark(b: &web::Browser) -> (String, bool) {
    let v = b
        .client
        .execute(
            "var l = document.getElementById('build-log-lines'); return [l ? l.textContent : '', window.prismMark === 1];",
            vec![],
        )
        .await
        .expect("execute");
    (v[0].as_str().unwrap_or("").to_owned(), v[1].as_bool().unwrap_or(false))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developer_builds_from_the_release_form_and_watches_the_log_live() {
    let w = World::start("web-builds").await;
    let driver = Driver::start();
    let dev = driver.browser(&w.server.url, "dev", true).await;
    dev.login("dev", DEV_PW).await;

    // The release form ticks "Build it now" for an application with build settings.
    dev.goto("/releases?application=web").await;
    assert!(
        dev.find("#build-now").await.is_selected().await.unwrap(),
        "Build it now is ticked for an application with build settings"
    );
    dev.fill("#create-release textarea[name=change_note]", "Shop page, built at once")
        .await;
    dev.screenshot("60-release-form-build-now").await;
    dev.click("#create-release-submit").await;
    let rel = dev.path().await.trim_start_matches("/releases/").to_owned();
    assert!(rel.starts_with('r'), "on the release page, got {rel}");
    // The page is marked; a reload would lose the mark.
    dev.client.execute("window.prismMark = 1;", vec![]).await.unwrap();
    let (first, _) = log_and_mark(&dev).await;
    assert!(
        !has_line(&first, LIVE_LINE),
        "the line is printed seconds after the build starts, not yet on the page:\n{first}"
    );
    assert!(
        dev.exists("#build-following").await,
        "the page says it follows the build"
    );

    // The line the build prints arrives through the stream, on the same page.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (log, same_page) = log_and_mark(&dev).await;
        if has_line(&log, LIVE_LINE) {
            assert!(same_page, "the line came with a reload, not live");
            let lines: Vec<&str> = log.lines().collect();
            let at = |l: &str| lines.iter().position(|x| *x == l);
            assert!(
                at("compiling the shop") < at(LIVE_LINE),
                "lines keep their order:\n{log}"
            );
            assert!(!has_line(&log, "all done"), "the build is still running");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{LIVE_LINE} never appeared; the page shows:\n{log}\n{}",
            w.server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    dev.screenshot_of("#build-log-lines", "61-build-log-live").await;

    // When the build ends the page reloads with the result.
    wait_for_build_state(&dev, "succeeded", 120).await;
    let build = w.api.build_of(&rel).await;
    assert_eq!(build["state"], "succeeded", "{build}");
    let digest = build["image_digest"].as_str().unwrap().to_owned();
    assert!(digest.starts_with("sha256:"), "{build}");
    assert_eq!(dev.text("#build-digest").await, digest);
    assert_eq!(dev.text("#build-commit").await, build["commit_sha"].as_str().unwrap());
    assert_eq!(dev.text("#release-state").await, "built");
    assert!(dev.text("#build-base").await.contains("busybox"));
    // The command ran in the builder image (the base here), shown by digest.
    assert!(
        dev.text("#build-builder")
            .await
            .contains(build["builder_digest"].as_str().unwrap()),
        "{build}"
    );
    assert!(!dev.exists("#build-following").await);
    assert!(!dev.exists("#start-build").await, "a built release is not built again");
    // The reloaded page says the result once, politely (the layout's status
    // region, for screen readers; the log lines themselves are not read).
    let want = format!("#{}: succeeded", build["id"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let said = dev
            .client
            .execute("return document.getElementById('announce').textContent", vec![])
            .await
            .unwrap();
        if said.as_str().unwrap_or("").contains(&want) {
            break;
        }
        assert!(Instant::now() < deadline, "the page announced {said}, not {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    dev.screenshot("62-build-succeeded").await;

    // The permanent log page: every line in order, Prism's own lines apart.
    dev.click("#build-permanent").await;
    assert_eq!(dev.path().await, format!("/builds/{}", build["id"]));
    let log = dev.text("#build-log-lines").await;
    let order = [
        "[prism] checkout",
        "[prism] commit",
        "[prism] builder image busybox @ sha256:",
        "[prism] container executor",
        "compiling the shop",
        LIVE_LINE,
        "all done",
        "[prism] pushed",
    ];
    let lines: Vec<&str> = log.lines().collect();
    // Prism's own lines by their start, the command's output whole.
    let at: Vec<usize> = order
        .iter()
        .map(|l| {
            lines
                .iter()
                .position(|x| {
                    if l.starts_with("[prism]") {
                        x.starts_with(l)
                    } else {
                        x == l
                    }
                })
                .unwrap_or_else(|| panic!("{l:?} not in the log:\n{log}"))
        })
        .collect();
    assert!(
        at.windows(2).all(|p| p[0] < p[1]),
        "lines keep their order ({at:?}):\n{log:?}"
    );
    assert!(dev.text(".log-system").await.starts_with("[prism]"));
    assert_eq!(dev.text("#build-digest").await, digest);
    assert!(
        !dev.exists("script[src='/static/live.js']").await,
        "a finished build is not followed"
    );
    dev.screenshot("63-build-log-page").await;

    // A failing build names its kind and shows the log's tail, stderr set apart.
    dev.goto("/releases?application=broken").await;
    dev.fill("#create-release textarea[name=change_note]", "This one fails")
        .await;
    dev.click("#create-release-submit").await;
    let broken = dev.path().await.trim_start_matches("/releases/").to_owned();
    wait_for_build_state(&dev, "failed", 120).await;
    assert_eq!(dev.text("#build-failure-kind").await, "build");
    assert!(
        dev.text("#build-error").await.contains("exit"),
        "{}",
        dev.text("#build-error").await
    );
    assert_eq!(dev.text(".log-stderr").await, "broken-on-stderr");
    assert_eq!(dev.text("#release-state").await, "build_failed");
    assert!(dev.exists("#start-build").await, "the developer may build it again");
    dev.screenshot_of("#build-log-lines", "64-build-failed").await;

    // The tester sees the failure but no button to build.
    let tess = driver.browser(&w.server.url, "tess", true).await;
    tess.login("tess", TESTER_PW).await;
    tess.goto(&format!("/releases/{broken}")).await;
    assert_eq!(tess.text("#build-failure-kind").await, "build");
    assert!(!tess.exists("#start-build").await, "a tester builds nothing");
    assert!(!tess.exists("#cancel-build").await);
    // The tester reads the application's build settings but has no form for them.
    tess.goto("/apps/web").await;
    assert!(tess
        .text("#build-settings-view")
        .await
        .contains("\"base_image\": \"busybox\""));
    assert!(!tess.exists("#build-settings-json").await);
    tess.screenshot("65-tester-no-build-button").await;

    // The developer builds it again (it hangs this time) and cancels it.
    hang(&w);
    dev.goto(&format!("/releases/{broken}")).await;
    dev.click("#start-build").await;
    assert_eq!(dev.path().await, format!("/releases/{broken}"));
    dev.find("#cancel-build").await;
    dev.screenshot("66-build-running-cancel").await;
    dev.click("#cancel-build").await;
    wait_for_build_state(&dev, "cancelled", 60).await;
    assert_eq!(dev.text("#build-failure-kind").await, "cancelled");
    assert!(dev.exists("#builds tr[data-build]").await, "both builds are listed");
    dev.screenshot("67-build-cancelled").await;
    // Admin pages are not the developer's.
    dev.goto("/admin/base-images/busybox").await;
    assert!(!dev.exists("#base-build").await, "no base buttons for a developer");
    dev.goto("/admin/registries").await;
    assert!(
        dev.text("h1").await.contains("Not allowed"),
        "{}",
        dev.text("main").await
    );

    // The admin changes the base's recipe and builds it again: web's image
    // is now on an older digest, which the lineage page shows.
    let admin = driver.browser(&w.server.url, "admin", true).await;
    admin.login("admin", ADMIN_PASSWORD).await;
    let old = w.api.built_base("busybox", None).await["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    w.api
        .call(
            "POST",
            "/base-images/busybox/build",
            json!({"recipe": {"rootfs": "rootfs.tar", "config": {"env": {"TZ": "Asia/Shanghai"}}}}),
        )
        .await;
    let new = w.api.built_base("busybox", Some(&old)).await["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    admin.goto("/").await;
    admin.click("nav a[href='/admin/base-images']").await;
    admin.click("#base-images a[href='/admin/base-images/busybox']").await;
    assert_eq!(admin.text("#base-tier").await, "1");
    assert_eq!(admin.text("#base-digest").await, new);
    let versions = admin.text("#base-versions").await;
    assert!(versions.contains(&old) && versions.contains(&new), "{versions}");
    let outdated = admin.text("#outdated-apps").await;
    assert!(
        admin.exists("#outdated-apps tr[data-app=web]").await && outdated.contains(&old),
        "web is still on {old}: {outdated}"
    );
    assert!(
        !admin.exists("#outdated-apps tr[data-app=broken]").await,
        "broken has no image"
    );
    admin.screenshot("68-base-image-lineage").await;
    admin.click("#base-rebuild-apps").await;
    let rebuilt = admin.text("#rebuilt").await;
    assert!(rebuilt.contains("web"), "{rebuilt}");
    let releases = w.api.call("GET", "/releases?application=web", Value::Null).await;
    let newest = &releases["items"][0];
    assert_ne!(newest["id"].as_str(), Some(rel.as_str()), "a rebuild release was made");
    assert!(rebuilt.contains(newest["id"].as_str().unwrap()), "{rebuilt}");
    assert!(newest["change_note"].as_str().unwrap().contains(&new), "{newest}");
    admin.screenshot("69-rebuild-releases-created").await;

    // The admin registers a base image from the list page: a refused
    // description is named and kept in the box; a good one is built.
    admin.goto("/admin/base-images").await;
    admin.tick("#new-base summary").await;
    let bad = r#"{"name": "alpine", "tier": 3, "registry": "main", "repository": "base/alpine"}"#;
    admin.fill("#new-base textarea[name=json]", bad).await;
    admin.click("#create-base").await;
    assert!(admin.text("#notice").await.contains("tier"));
    assert!(!admin.exists("#base-images tr[data-base=alpine]").await);
    let good = r#"{"name": "busybox-tz", "tier": 1, "registry": "main", "repository": "base/busybox-tz", "recipe": {"rootfs": "rootfs.tar", "config": {"env": {"TZ": "Asia/Shanghai"}}}}"#;
    admin.fill("#new-base textarea[name=json]", good).await;
    admin.click("#create-base").await;
    assert!(admin.exists("#base-images tr[data-base=busybox-tz]").await);
    let registered = w.api.built_base("busybox-tz", None).await;
    assert_eq!(registered["tier"], 1);
    admin.screenshot("69b-base-image-registered").await;

    // The admin edits web's build settings as JSON; a bad artifact path is
    // named next to the box and nothing is saved.
    admin.goto("/apps/web").await;
    let json_now = admin
        .find("#build-settings-json")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(json_now.contains("busybox"), "{json_now}");
    let bad = json_now.replace("\"index.html\"", "\"index.html\", \"../outside\"");
    assert_ne!(bad, json_now);
    admin.fill("#build-settings-json", &bad).await;
    admin.click("#save-build-settings").await;
    let err = admin.text("[data-error-for='build_settings.artifact_paths[1]']").await;
    assert!(err.contains("build_settings.artifact_paths[1]"), "{err}");
    admin.screenshot_of("#build-settings", "72-build-settings-error").await;
    let app = w.api.call("GET", "/applications/web", Value::Null).await;
    assert_eq!(
        app["build_settings"]["artifact_paths"],
        json!(["index.html"]),
        "not saved: {app}"
    );
    let good = json_now.replace("\"index.html\"", "\"index.html\", \"css\"");
    admin.fill("#build-settings-json", &good).await;
    admin.click("#save-build-settings").await;
    let app = w.api.call("GET", "/applications/web", Value::Null).await;
    assert_eq!(
        app["build_settings"]["artifact_paths"],
        json!(["index.html", "css"]),
        "{app}"
    );

    // Statistics: the median build duration, from the builds above.
    admin.goto("/stats?project=shop").await;
    let median = admin.text("#build-median").await;
    assert!(median.ends_with(" s"), "web's build took seconds: {median}");
    let this_week = admin
        .client
        .execute(
            "var r = document.querySelectorAll('#chart-builds svg rect'); return parseFloat(r[r.length - 1].getAttribute('height'));",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        this_week.as_f64().unwrap() > 0.0,
        "this week's bar shows the build: {this_week}"
    );
    admin.screenshot_of("#chart-builds", "73-build-duration-chart").await;

    // Registries: the password is stored, never shown.
    admin.click("nav a[href='/admin/registries']").await;
    assert_eq!(
        admin.text("#registries tr[data-registry=main] td:nth-child(4)").await,
        "stored"
    );
    let html = admin.client.source().await.unwrap();
    assert!(
        !html.contains(REGISTRY_PASSWORD),
        "the registry password is never sent back"
    );
    admin.click("#registries tr[data-registry=main] a").await;
    assert_eq!(
        admin
            .find("#registry-form input[name=password]")
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default(),
        ""
    );
    assert_eq!(
        admin
            .find("#registry-form input[name=username]")
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default(),
        REGISTRY_USER
    );
    admin.screenshot("70-registries").await;
    admin.goto("/admin/build-setup").await;
    assert!(admin.exists("#git-credentials tr[data-credential=gitea]").await);
    // A stack edited as JSON: a bad path is refused naming the field, a good edit is saved.
    admin.tick("#stacks details[data-stack=static] summary").await;
    let stack_box = "#stacks details[data-stack=static] textarea";
    let stack_json = admin
        .find(stack_box)
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    let mut stack: Value = serde_json::from_str(&stack_json).expect("the stack as JSON");
    stack["artifact_paths"] = json!(["../outside"]);
    admin.fill(stack_box, &stack.to_string()).await;
    admin.click("#stacks details[data-stack=static] button").await;
    assert!(
        admin.text("#notice").await.contains("artifact_paths[0]"),
        "{}",
        admin.text("#notice").await
    );
    assert!(admin.exists("#notice [data-error-for='artifact_paths[0]']").await);
    stack["artifact_paths"] = json!(["."]);
    stack["description"] = json!("Static files, edited in the console");
    admin.fill(stack_box, &stack.to_string()).await;
    admin.click("#stacks details[data-stack=static] button").await;
    assert!(!admin.exists("#notice").await, "saved");
    let stacks = w.api.call("GET", "/stacks", Value::Null).await;
    let saved = stacks
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "static")
        .unwrap()
        .clone();
    assert_eq!(saved["description"], "Static files, edited in the console", "{saved}");
    // Git credentials and executors: added and deleted; secrets never sent back.
    admin.fill("#credential-form input[name=name]", "extra").await;
    admin.fill("#credential-form input[name=username]", "someone").await;
    admin
        .fill("#credential-form input[name=password]", "extra-git-secret")
        .await;
    admin
        .fill("#credential-form input[name=host]", "git.example:3000")
        .await;
    admin.fill("#credential-form input[name=projects]", "shop").await;
    admin.click("#credential-form button").await;
    assert!(admin.exists("#git-credentials tr[data-credential=extra]").await);
    assert_eq!(
        admin.text("#git-credentials tr[data-credential=extra] td.scope").await,
        "shop",
        "the credential belongs to the project named in the form"
    );
    admin.fill("#executor-form input[name=name]", "ci").await;
    admin
        .fill("#executor-form input[name=url]", "https://jenkins.example.com")
        .await;
    admin.fill("#executor-form input[name=job]", "builds/prism-build").await;
    admin.fill("#executor-form input[name=username]", "jenkins-user").await;
    admin
        .fill("#executor-form input[name=token]", "jenkins-token-secret")
        .await;
    admin.click("#executor-form button").await;
    assert_eq!(
        admin.text("#executors tr[data-executor=ci] td:nth-child(3)").await,
        "builds/prism-build"
    );
    let html = admin.client.source().await.unwrap();
    for secret in [GIT_PASSWORD, "extra-git-secret", "jenkins-token-secret"] {
        assert!(!html.contains(secret), "{secret} is never sent back");
    }
    admin.screenshot("71-build-setup").await;
    admin.click("#git-credentials tr[data-credential=extra] button").await;
    assert!(!admin.exists("#git-credentials tr[data-credential=extra]").await);
    admin.click("#executors tr[data-executor=ci] button").await;
    assert!(!admin.exists("#executors tr[data-executor=ci]").await);

    // The address policy: a bad range is named; a good one is kept.
    admin
        .fill("#address-policy-form textarea[name=denied]", "10.0.0.0/8\n10.0.0.0/33")
        .await;
    admin.click("#address-policy-form button").await;
    assert!(
        admin.text("#notice").await.contains("denied[1]"),
        "the bad entry is named"
    );
    admin
        .fill("#address-policy-form textarea[name=denied]", "10.0.0.0/8")
        .await;
    admin.click("#address-policy-form button").await;
    assert_eq!(
        admin.text("#address-policy-form textarea[name=denied]").await.trim(),
        "10.0.0.0/8"
    );

    for b in [dev, tess, admin] {
        b.close().await;
    }
}

/// A build run by a Jenkins executor (a double following Jenkins' REST
/// protocol) links its console from the release and build pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jenkins_build_links_its_console() {
    let w = World::start("web-builds-jenkins").await;
    let jenkins = jenkins_double::JenkinsDouble::start(jenkins_double::DoubleConfig {
        artifacts: vec!["dist/index.html".into()],
        ..Default::default()
    })
    .await;
    w.api
        .call(
            "POST",
            "/executors",
            json!({"name": "ci", "kind": "jenkins", "url": jenkins.url(), "job": "prism-build",
                   "username": jenkins_double::USER, "token": jenkins_double::TOKEN, "projects": ["shop"]}),
        )
        .await;
    let git_root = w.tmp.path().join("git");
    repo(&git_root, "jsite", &[("README", "built elsewhere\n")]);
    w.api
        .call(
            "POST",
            "/applications",
            json!({"project": "shop", "name": "jsite", "git_url": w.git.url("jsite.git"),
                   "build_settings": {"stack": "generic", "base_image": "busybox", "registry": "main",
                                      "git_credential": "gitea", "executor": "ci",
                                      "build_command": "mkdir -p dist && echo built by jenkins > dist/index.html",
                                      "artifact_paths": ["dist"], "cmd": ["cat", "/app/dist/index.html"]}}),
        )
        .await;
    let rel = w
        .api
        .call(
            "POST",
            "/releases",
            json!({"application": "jsite", "git_ref": "main", "change_note": "via jenkins", "build": true}),
        )
        .await;
    let id = rel["build"]["id"].as_i64().expect("a build");
    let b = w.api.finished_build(id).await;
    assert_eq!(b["state"], "succeeded", "{b}");
    let console = b["external_url"].as_str().unwrap().to_owned();
    assert!(console.starts_with(&jenkins.url()), "{b}");

    let driver = Driver::start();
    let dev = driver.browser(&w.server.url, "dev", true).await;
    dev.login("dev", DEV_PW).await;
    dev.goto(&format!("/releases/{}", rel["id"].as_str().unwrap())).await;
    assert!(dev.text("#build-executor").await.starts_with("ci"));
    let href = dev.find("#build-external").await.attr("href").await.unwrap();
    assert_eq!(href.as_deref(), Some(console.as_str()));
    dev.screenshot_of("#build-facts", "74-jenkins-build-console-link").await;
    dev.goto(&format!("/builds/{id}")).await;
    let href = dev.find("#build-external").await.attr("href").await.unwrap();
    assert_eq!(href.as_deref(), Some(console.as_str()));
    assert!(
        dev.text("#build-log-lines").await.contains("[prism] jenkins executor"),
        "{}",
        dev.text("#build-log-lines").await
    );
    dev.close().await;
}

/// The build and cancel buttons are form posts: refused (403) without the
/// session's CSRF token, redirected (303) to the release with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_and_cancel_posts_need_the_csrf_field() {
    let w = World::start("web-builds-csrf").await;
    let base = &w.server.url;
    // The build hangs until the file is gone: it is still running when cancelled.
    hang(&w);
    let rel = w
        .api
        .call(
            "POST",
            "/releases",
            json!({"application": "broken", "git_ref": "main", "change_note": "by curl"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let http = Http::builder().redirect(Policy::none()).build().unwrap();
    let session = console_login::session(&http, base, "dev", DEV_PW).await;
    let page = http
        .get(format!("{base}/releases/{rel}"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"start-build\""), "the developer is offered Build");
    // "Build it now" is ticked for an application with build settings only.
    w.api
        .call(
            "POST",
            "/applications",
            json!({"project": "shop", "name": "plain", "git_url": w.git.url("plain.git")}),
        )
        .await;
    for (app, ticked) in [("broken", true), ("plain", false)] {
        let form = http
            .get(format!("{base}/releases?application={app}"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let at = form.find("id=\"build-now\"").expect("the checkbox");
        let tag = &form[at..at + form[at..].find('>').unwrap()];
        assert_eq!(tag.contains("checked"), ticked, "{app}: {tag}");
    }
    let csrf = csrf_in(&page);
    let post = |path: String, token: Option<&str>| {
        let (http, session) = (&http, &session);
        let form: Vec<(&'static str, String)> = token.map(|t| ("csrf", t.to_owned())).into_iter().collect();
        async move {
            http.post(format!("{base}{path}"))
                .header("cookie", session)
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    for token in [None, Some("not-the-token")] {
        let r = post(format!("/releases/{rel}/build"), token).await;
        assert_eq!(r.status(), 403, "build with {token:?}");
        assert!(r.text().await.unwrap().contains("CSRF"));
    }
    let builds = w.api.call("GET", &format!("/releases/{rel}/builds"), Value::Null).await;
    assert_eq!(builds.as_array().unwrap().len(), 0, "nothing was built: {builds}");

    let r = post(format!("/releases/{rel}/build"), Some(&csrf)).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("/releases/{rel}").as_str());
    let build = w.api.build_of(&rel).await;
    let id = build["id"].as_i64().expect("a build was started");
    assert_eq!(build["requested_by"], "dev");
    // Cancelled once its command runs (the container has started).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !w
        .api
        .call("GET", &format!("/builds/{id}/log"), Value::Null)
        .await
        .to_string()
        .contains("about to fail")
    {
        assert!(std::time::Instant::now() < deadline, "the build command never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    for token in [None, Some("not-the-token")] {
        let r = post(format!("/builds/{id}/cancel"), token).await;
        assert_eq!(r.status(), 403, "cancel with {token:?}");
    }
    let r = post(format!("/builds/{id}/cancel"), Some(&csrf)).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("/releases/{rel}").as_str());
    let ended = w.api.finished_build(id).await;
    assert_eq!(ended["state"], "cancelled", "{ended}");
    // Cancelling an ended build is a conflict page, not a redirect.
    let r = post(format!("/builds/{id}/cancel"), Some(&csrf)).await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("<html"));
    // The build page is its permanent address, also for a plain client.
    let r = http
        .get(format!("{base}/builds/{id}"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("about to fail"));
}
