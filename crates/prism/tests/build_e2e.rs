//! The build pipeline end to end, with real parts only: `prism serve` and the
//! `prism` CLI, a real git server (`git http-backend` behind Basic auth), a
//! real registry (Debian's `docker-registry` with htpasswd), base images Prism
//! builds from a root filesystem tarball, real builds (npm install from the
//! npm registry), images checked with `skopeo` and run with `runc`. The one
//! double is Jenkins (no Jenkins server can run here): a server that follows
//! Jenkins' documented REST protocol and really runs the job's shell command.

use prism_test_support::git as git_support;
use prism_test_support::jenkins as jenkins_double;
use prism_test_support::registry as registry_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use git_support::{git, HttpGit};
use prism_test_support::ServerProcess as Server;
use registry_support::{busybox_rootfs, run_image, TestRegistry};
use serde_json::{json, Value};

const GIT_USER: &str = "builder";
const GIT_PASSWORD: &str = "gitpw-e2e-secret";
const REGISTRY_USER: &str = "pusher";
const REGISTRY_PASSWORD: &str = "registry-pw-e2e";

/// A bare repository `<root>/<name>.git` whose `main` holds `files` (and symlinks); returns its commit.
fn repo(root: &Path, name: &str, files: &[(&str, &str)], symlinks: &[(&str, &str)]) -> String {
    let work = root.join(format!("{name}-work"));
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    for (path, content) in files {
        let p = work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    for (link, target) in symlinks {
        std::os::unix::fs::symlink(target, work.join(link)).unwrap();
    }
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "first"]);
    let sha = git(&work, &["rev-parse", "HEAD"]);
    git(
        root,
        &["clone", "-q", "--bare", &format!("{name}-work"), &format!("{name}.git")],
    );
    sha
}

fn write_json(dir: &Path, name: &str, v: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    p.display().to_string()
}

fn wait_base(server: &Server, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let b = server.run(&["base", "show", name]).json();
        match b["build_state"].as_str() {
            Some("succeeded") => return b,
            Some("failed") => panic!("base {name} failed: {b}\n{}", server.log()),
            _ => {}
        }
        assert!(Instant::now() < deadline, "base {name} not built in time: {b}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn build_of(server: &Server, release: &str) -> Value {
    let builds = server.json(&["build", "list"]);
    builds
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["release"] == release)
        .cloned()
        .unwrap_or_else(|| panic!("no build of {release}: {builds}"))
}

fn wait_build(server: &Server, id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let b = server.json(&["build", "show", &id.to_string()]);
        if matches!(b["state"].as_str(), Some("succeeded" | "failed" | "cancelled")) {
            return b;
        }
        assert!(Instant::now() < deadline, "build {id} did not end: {b}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct World {
    server: Server,
    registry: TestRegistry,
    git: HttpGit,
    tmp: tempfile::TempDir,
}

impl World {
    async fn start(name: &str, with_node: bool) -> World {
        World::start_with(name, with_node, &[]).await
    }

    async fn start_with(name: &str, with_node: bool, extra_env: &[(&str, &str)]) -> World {
        let tmp = tempfile::tempdir().unwrap();
        let sources = tmp.path().join("sources");
        std::fs::create_dir_all(&sources).unwrap();
        busybox_rootfs(&sources);
        if with_node {
            // Node.js and npm: the `node` base is also the builder image npm runs in.
            prism_test_support::toolchain::node_toolchain(&sources.join("node-runtime"));
        }
        let registry = TestRegistry::start(Some((REGISTRY_USER, REGISTRY_PASSWORD)));
        let git_root = tmp.path().join("git");
        std::fs::create_dir_all(&git_root).unwrap();
        let git = HttpGit::start(&git_root, Some((GIT_USER, GIT_PASSWORD))).await;
        let mut env = vec![
            ("PRISM_BASE_SOURCES", sources.to_str().unwrap()),
            ("PRISM_DOCKER_CONFIG", "/nonexistent/config.json"),
            ("PRISM_JENKINS_POLL_MS", "50"),
        ];
        env.extend_from_slice(extra_env);
        let server = Server::start_with(name, &env);
        server.login_admin();
        server
            .run_with_stdin(
                &[
                    "registry",
                    "put",
                    "main",
                    "--host",
                    &format!("127.0.0.1:{}", registry.port),
                    "--insecure-http",
                    "--username",
                    REGISTRY_USER,
                    "--password-stdin",
                    "--all-projects",
                ],
                &format!("{REGISTRY_PASSWORD}\n"),
            )
            .ok();
        server
            .run_with_stdin(
                &[
                    "git-credential",
                    "put",
                    "gitea",
                    "--username",
                    GIT_USER,
                    "--host",
                    &git.addr.to_string(),
                    "--all-projects",
                ],
                &format!("{GIT_PASSWORD}\n"),
            )
            .ok();
        server
            .run(&["project", "create", "shop", "--description", "The shop"])
            .ok();
        World {
            server,
            registry,
            git,
            tmp,
        }
    }

    fn git_root(&self) -> PathBuf {
        self.tmp.path().join("git")
    }

    fn busybox_base(&self, env_tz: &str) -> String {
        write_json(
            self.tmp.path(),
            &format!("busybox-{}.json", env_tz.replace('/', "-")),
            &json!({"rootfs": "rootfs.tar", "config": {"env": {"TZ": env_tz}}}),
        )
    }

    fn app(&self, name: &str, settings: Value) {
        let file = write_json(self.tmp.path(), &format!("{name}-settings.json"), &settings);
        self.server
            .run(&[
                "app",
                "create",
                name,
                "--project",
                "shop",
                "--git-url",
                &self.git.url(&format!("{name}.git")),
                "--build-settings",
                &file,
            ])
            .ok();
    }

    fn creds(&self) -> String {
        format!("{REGISTRY_USER}:{REGISTRY_PASSWORD}")
    }

    fn image(&self, repository_and_tag: &str) -> String {
        format!("127.0.0.1:{}/{repository_and_tag}", self.registry.port)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn builds_images_from_git_on_prism_built_bases_and_tracks_their_lineage() {
    let w = World::start("build-e2e", true).await;
    let s = &w.server;

    // Bases: tier 1 from a root filesystem tarball, tier 2 (Node.js runtime) on it.
    s.run(&[
        "base",
        "create",
        "busybox",
        "--tier",
        "1",
        "--registry",
        "main",
        "--repository",
        "base/busybox",
        "--tag",
        "1",
        "--recipe",
        &w.busybox_base("Asia/Shanghai"),
    ])
    .ok();
    let busybox = wait_base(s, "busybox");
    let busybox_digest1 = busybox["digest"].as_str().unwrap().to_owned();
    let node_recipe = write_json(
        w.tmp.path(),
        "node.json",
        &json!({"layers": [{"source": "node-runtime", "destination": "/"}], "config": {"env": {"NODE_VERSION": "host"}}}),
    );
    s.run(&[
        "base",
        "create",
        "node",
        "--tier",
        "2",
        "--parent",
        "busybox",
        "--registry",
        "main",
        "--repository",
        "base/node",
        "--tag",
        "20",
        "--recipe",
        &node_recipe,
    ])
    .ok();
    let node = wait_base(s, "node");
    assert_eq!(node["parent_digest"], busybox_digest1.as_str());
    let inspected = w.registry.skopeo_inspect("base/busybox:1", Some(&w.creds())).unwrap();
    assert!(
        inspected["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "TZ=Asia/Shanghai"),
        "{inspected}"
    );

    // A static site: no build command, the checkout is the artifact.
    let site_sha = repo(
        &w.git_root(),
        "site",
        &[
            ("index.html", "<h1>Prism static site</h1>\n"),
            ("css/site.css", "h1 { color: teal }\n"),
        ],
        &[],
    );
    w.app(
        "site",
        json!({"stack": "static", "base_image": "busybox", "registry": "main", "git_credential": "gitea",
               "build_command": "echo building with gitpw-e2e-secret", "cmd": ["cat", "/app/index.html"]}),
    );
    let out = s.run(&[
        "release",
        "create",
        "--app",
        "site",
        "--ref",
        "main",
        "--note",
        "first site",
        "--follow",
    ]);
    assert_eq!(out.code, 0, "{out:#?}\n{}", s.log());
    // The log streamed to the CLI, with the registered git password masked.
    assert!(out.stdout.contains("building with ***"), "{out:#?}");
    assert!(
        !out.stdout.contains(GIT_PASSWORD) && !out.stderr.contains(GIT_PASSWORD),
        "{out:#?}"
    );
    assert!(out.stdout.contains(&format!("[prism] commit {site_sha}")), "{out:#?}");
    let site_build = build_of(s, "r1");
    assert_eq!(site_build["state"], "succeeded");
    assert_eq!(site_build["commit_sha"], site_sha.as_str());
    assert_eq!(site_build["base_digest"], busybox_digest1.as_str());
    // The command ran in a container of the builder image (the base here), recorded by digest.
    assert_eq!(site_build["builder_image"], "busybox", "{site_build}");
    assert_eq!(site_build["builder_digest"], busybox_digest1.as_str());
    assert!(
        out.stdout
            .contains(&format!("[prism] builder image busybox @ {busybox_digest1}")),
        "{out:#?}"
    );
    let shown = s.run(&["build", "show", &site_build["id"].to_string()]).ok();
    assert!(
        shown.stdout.contains(&format!("busybox @ {busybox_digest1}")),
        "{shown:#?}"
    );
    let release = s.json(&["release", "show", "r1"]);
    assert_eq!(release["state"], "built");
    assert_eq!(release["commit_sha"], site_sha.as_str());
    assert_eq!(release["image_digest"], site_build["image_digest"]);
    // What the registry holds: labels, config, the artifact where it belongs, and it runs.
    let inspected = w.registry.skopeo_inspect("shop/site:r1", Some(&w.creds())).unwrap();
    assert_eq!(inspected["Labels"]["io.prism.release"], "r1");
    assert_eq!(inspected["Labels"]["io.prism.commit"], site_sha.as_str());
    assert_eq!(inspected["Labels"]["io.prism.application"], "site");
    assert_eq!(inspected["Digest"], site_build["image_digest"]);
    assert_eq!(
        run_image(&w.image("shop/site:r1"), w.tmp.path(), Some(&w.creds())),
        "<h1>Prism static site</h1>\n"
    );
    // The permanent log address serves the whole log.
    let log = s.run(&["build", "log", &site_build["id"].to_string()]).ok();
    assert!(log.stdout.contains("[prism] pushed"), "{log:#?}");

    // A Node.js application whose dependencies come from the npm registry.
    repo(
        &w.git_root(),
        "hello",
        &[
            ("package.json", r#"{"name": "hello", "version": "1.0.0", "dependencies": {"is-number": "7.0.0"}}"#),
            (
                "index.js",
                "const isNumber = require('is-number');\nconsole.log(`hello from node, is-number(5)=${isNumber(5)}, NODE_ENV=${process.env.NODE_ENV}`);\n",
            ),
        ],
        &[],
    );
    w.app(
        "hello",
        json!({"stack": "node", "base_image": "node", "registry": "main", "git_credential": "gitea"}),
    );
    let out = s.run(&[
        "release", "create", "--app", "hello", "--ref", "main", "--note", "node app", "--follow",
    ]);
    assert_eq!(out.code, 0, "{out:#?}\n{}", s.log());
    assert!(
        out.stdout.contains("added 1 package"),
        "npm's own output is in the log: {out:#?}"
    );
    let printed = run_image(&w.image("shop/hello:r2"), w.tmp.path(), Some(&w.creds()));
    assert_eq!(printed, "hello from node, is-number(5)=true, NODE_ENV=production\n");
    assert_eq!(build_of(s, "r2")["builder_image"], "node");
    // The second build of the unchanged app downloads nothing: with no
    // network at all, npm installs from the application's dependency cache.
    let offline = write_json(
        w.tmp.path(),
        "hello-offline.json",
        &json!({"stack": "node", "base_image": "node", "registry": "main", "git_credential": "gitea", "network": "none"}),
    );
    s.run(&["app", "update", "hello", "--build-settings", &offline]).ok();
    let out = s.run(&[
        "release", "create", "--app", "hello", "--ref", "main", "--note", "offline", "--follow",
    ]);
    assert_eq!(out.code, 0, "{out:#?}\n{}", s.log());
    assert!(out.stdout.contains("added 1 package"), "{out:#?}");
    let printed = run_image(&w.image("shop/hello:r3"), w.tmp.path(), Some(&w.creds()));
    assert_eq!(printed, "hello from node, is-number(5)=true, NODE_ENV=production\n");

    // The same commit built again gives the same layer.
    let again = s.json(&[
        "release",
        "create",
        "--app",
        "site",
        "--ref",
        &site_sha,
        "--note",
        "same commit",
        "--build",
    ]);
    let again = wait_build(s, again["build"]["id"].as_i64().unwrap());
    assert_eq!(again["state"], "succeeded", "{again}");
    assert_eq!(again["layer_digest"], site_build["layer_digest"]);

    // Lineage: rebuilding the public base leaves site (and the node base) on the old digest...
    s.run(&["base", "build", "busybox", "--recipe", &w.busybox_base("UTC")])
        .ok();
    std::thread::sleep(Duration::from_millis(300));
    let busybox = wait_base(s, "busybox");
    let busybox_digest2 = busybox["digest"].as_str().unwrap().to_owned();
    assert_ne!(busybox_digest2, busybox_digest1);
    let outdated: Vec<&str> = busybox["outdated_applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["application"].as_str().unwrap())
        .collect();
    assert_eq!(outdated, ["site"], "{busybox}");
    assert_eq!(busybox["outdated_children"][0]["name"], "node");
    assert_eq!(busybox["versions"].as_array().unwrap().len(), 2);
    // ... and rebuild releases put it on the new one, through the normal path.
    let rebuilt = s.json(&["base", "rebuild-apps", "busybox"]);
    let rebuilt = rebuilt.as_array().unwrap();
    assert_eq!(rebuilt.len(), 1, "{rebuilt:?}");
    let b = wait_build(s, rebuilt[0]["build"].as_i64().unwrap());
    assert_eq!(b["state"], "succeeded", "{b}");
    assert_eq!(b["base_digest"], busybox_digest2.as_str());
    assert_eq!(b["commit_sha"], site_sha.as_str());
    assert_eq!(b["layer_digest"], site_build["layer_digest"], "same commit, same layer");
    assert_ne!(b["image_digest"], site_build["image_digest"], "a new base, a new image");
    let rel = s.json(&["release", "show", rebuilt[0]["release"].as_str().unwrap()]);
    assert_eq!(rel["state"], "built");
    assert!(rel["change_note"].as_str().unwrap().contains(&busybox_digest2), "{rel}");
    let busybox = s.run(&["base", "show", "busybox"]).json();
    assert_eq!(busybox["outdated_applications"], json!([]));
    let inspected = w
        .registry
        .skopeo_inspect(&format!("shop/site:{}", rel["id"].as_str().unwrap()), Some(&w.creds()))
        .unwrap();
    assert!(
        inspected["Env"].as_array().unwrap().iter().any(|e| e == "TZ=UTC"),
        "{inspected}"
    );

    // Every change is in the audit log, and no secret is.
    let audit = s.run(&["audit", "--output", "json", "--limit", "500"]).ok().stdout;
    for action in [
        "registry.put",
        "git_credential.put",
        "base_image.create",
        "build.start",
        "build.succeeded",
        "base_image.built",
    ] {
        assert!(audit.contains(action), "audit lacks {action}");
    }
    assert!(!audit.contains(GIT_PASSWORD) && !audit.contains(REGISTRY_PASSWORD));
    assert!(!s.log().contains(GIT_PASSWORD) && !s.log().contains(REGISTRY_PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jenkins_executor_builds_through_the_rest_protocol() {
    let w = World::start("build-jenkins", false).await;
    let s = &w.server;
    let jenkins = jenkins_double::JenkinsDouble::start(jenkins_double::DoubleConfig {
        artifacts: vec!["dist/index.html".into()],
        ..Default::default()
    })
    .await;
    s.run(&[
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
        &w.busybox_base("UTC"),
    ])
    .ok();
    wait_base(s, "busybox");
    s.run_with_stdin(
        &[
            "executor",
            "create",
            "ci",
            "--url",
            &jenkins.url(),
            "--job",
            "prism-build",
            "--username",
            jenkins_double::USER,
            "--project",
            "shop",
        ],
        &format!("{}\n", jenkins_double::TOKEN),
    )
    .ok();
    let sha = repo(&w.git_root(), "jsite", &[("README", "built elsewhere\n")], &[]);
    w.app(
        "jsite",
        json!({"stack": "generic", "base_image": "busybox", "registry": "main", "git_credential": "gitea", "executor": "ci",
               "build_command": "mkdir -p dist && echo \"built by jenkins at $PRISM_COMMIT\" > dist/index.html",
               "artifact_paths": ["dist"], "cmd": ["cat", "/app/dist/index.html"]}),
    );
    let out = s.run(&[
        "release",
        "create",
        "--app",
        "jsite",
        "--ref",
        "main",
        "--note",
        "via jenkins",
        "--follow",
    ]);
    assert_eq!(out.code, 0, "{out:#?}\n{}", s.log());
    let b = build_of(s, "r1");
    assert_eq!(b["executor"], "ci");
    let console = b["external_url"].as_str().unwrap();
    assert!(
        console.starts_with(&jenkins.url()) && console.ends_with("console"),
        "{b}"
    );
    // The job got the command and the commit as parameters, with a crumb.
    let triggers = jenkins.requests_to(axum::http::Method::POST, "/buildWithParameters");
    assert_eq!(triggers.len(), 1);
    assert_eq!(triggers[0].param("PRISM_COMMIT"), Some(sha.as_str()));
    assert!(triggers[0].header(jenkins_double::CRUMB_FIELD).is_some());
    assert_eq!(
        run_image(&w.image("shop/jsite:r1"), w.tmp.path(), Some(&w.creds())),
        format!("built by jenkins at {sha}\n")
    );
    // The API token never shows.
    let audit = s.run(&["audit", "--output", "json", "--limit", "500"]).ok().stdout;
    assert!(!audit.contains(jenkins_double::TOKEN) && !s.log().contains(jenkins_double::TOKEN));
    assert!(!s
        .run(&["executor", "list", "--output", "json"])
        .ok()
        .stdout
        .contains(jenkins_double::TOKEN));
}

/// Each way a build can fail names where and why, and pushes nothing under the release's tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn build_failures_say_where_and_why_and_push_nothing() {
    let w = World::start("build-failures", false).await;
    let s = &w.server;
    s.run(&[
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
        &w.busybox_base("UTC"),
    ])
    .ok();
    wait_base(s, "busybox");
    repo(
        &w.git_root(),
        "app",
        &[("index.html", "ok\n"), ("dist/a.txt", "a\n")],
        &[("leak", "/etc/passwd")],
    );
    let base = json!({"stack": "static", "base_image": "busybox", "registry": "main", "git_credential": "gitea",
                      "artifact_paths": ["index.html", "dist"]});
    w.app("app", base.clone());
    let set = |settings: Value| {
        let file = write_json(w.tmp.path(), "app-update.json", &settings);
        s.run(&["app", "update", "app", "--build-settings", &file]).ok();
    };
    let merged = |extra: Value| {
        let mut v = base.clone();
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    let fails = |git_ref: &str, kind: &str, needle: &str| -> Value {
        let out = s.run(&[
            "release", "create", "--app", "app", "--ref", git_ref, "--note", kind, "--follow",
        ]);
        assert_eq!(out.code, 1, "{kind}: {out:#?}");
        assert!(
            out.stderr.contains(needle),
            "{kind}: stderr should name {needle:?}: {out:#?}"
        );
        let list = s.json(&["build", "list", "--app", "app", "--limit", "1"]);
        let b = list[0].clone();
        assert_eq!(
            b["state"],
            if kind == "cancelled" { "cancelled" } else { "failed" },
            "{b}"
        );
        assert_eq!(b["failure_kind"], kind, "{b}");
        let rel = s.json(&["release", "show", b["release"].as_str().unwrap()]);
        assert_eq!(rel["state"], "build_failed", "{rel}");
        assert!(
            w.registry
                .skopeo_inspect(
                    &format!("shop/app:{}", b["release"].as_str().unwrap()),
                    Some(&w.creds())
                )
                .is_err(),
            "{kind}: nothing may be pushed under the release's tag"
        );
        b
    };

    fails("no-such-branch", "ref_not_found", "no-such-branch");
    set(merged(
        json!({"build_command": "echo compiling; echo broken >&2; exit 3"}),
    ));
    let b = fails("main", "build", "exit code 3");
    assert!(
        b["error"].as_str().unwrap().contains("broken"),
        "the log tail is in the error: {b}"
    );
    set(merged(json!({"artifact_paths": ["leak"]})));
    fails("main", "artifact", "leak");
    set(merged(json!({"artifact_paths": ["dist/*.jar"]})));
    fails("main", "artifact", "matches nothing");

    // The registry refuses: Prism's stored password is wrong; the registry's own message is shown.
    s.run_with_stdin(
        &[
            "registry",
            "put",
            "main",
            "--host",
            &format!("127.0.0.1:{}", w.registry.port),
            "--insecure-http",
            "--username",
            REGISTRY_USER,
            "--password-stdin",
        ],
        "wrong-password\n",
    )
    .ok();
    set(base.clone());
    fails("main", "push", "UNAUTHORIZED");
    s.run_with_stdin(
        &[
            "registry",
            "put",
            "main",
            "--host",
            &format!("127.0.0.1:{}", w.registry.port),
            "--insecure-http",
            "--username",
            REGISTRY_USER,
            "--password-stdin",
        ],
        &format!("{REGISTRY_PASSWORD}\n"),
    )
    .ok();

    // A base image that does not exist in the registry.
    s.run(&[
        "base",
        "create",
        "ghost",
        "--tier",
        "1",
        "--registry",
        "main",
        "--repository",
        "base/ghost",
        "--tag",
        "9",
    ])
    .ok();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let g = s.run(&["base", "show", "ghost"]).json();
        if g["build_state"] == "failed" {
            assert!(g["build_error"].as_str().unwrap().contains("not found"), "{g}");
            break;
        }
        assert!(Instant::now() < deadline, "{g}");
        std::thread::sleep(Duration::from_millis(100));
    }
    set(merged(json!({"base_image": "ghost"})));
    fails("main", "base_not_found", "ghost");

    // Cancelling a running build kills its command.
    let marker = w.tmp.path().join("still-running");
    set(merged(
        json!({"build_command": format!("sleep 30; touch {}", marker.display())}),
    ));
    let rel = s.json(&[
        "release", "create", "--app", "app", "--ref", "main", "--note", "slow", "--build",
    ]);
    let id = rel["build"]["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.json(&["build", "show", &id.to_string()])["state"] != "building" {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
    s.run(&["build", "cancel", &id.to_string()]).ok();
    let b = wait_build(s, id);
    assert_eq!(b["state"], "cancelled", "{b}");
    assert_eq!(b["failure_kind"], "cancelled");
    assert_eq!(
        s.json(&["release", "show", rel["id"].as_str().unwrap()])["state"],
        "build_failed"
    );
    s.run(&["build", "cancel", &id.to_string()])
        .fails_with(1, "already ended");

    // Bad settings are refused when they are written, naming the field, and nothing changes.
    for (bad, field) in [
        (
            json!({"artifact_paths": ["../outside"]}),
            "build_settings.artifact_paths[0]",
        ),
        (
            json!({"artifact_paths": ["/etc/passwd"]}),
            "build_settings.artifact_paths[0]",
        ),
        (json!({"base_image": "nope"}), "build_settings.base_image"),
        (json!({"registry": "nope"}), "build_settings.registry"),
        (json!({"stack": "cobol"}), "build_settings.stack"),
        (json!({"timeout_seconds": 0}), "build_settings.timeout_seconds"),
    ] {
        let file = write_json(w.tmp.path(), "bad.json", &merged(bad));
        s.run(&["app", "update", "app", "--build-settings", &file])
            .fails_with(1, field);
    }
    let app = s.json(&["app", "show", "app"]);
    assert!(
        app["build_settings"]["build_command"]
            .as_str()
            .unwrap()
            .starts_with("sleep 30"),
        "{app}"
    );
}

/// A server killed in the middle of a build: once the job's lease lapses the
/// restarted server runs the build again from a fresh workspace, and the
/// second attempt pushes the same layer; the log tells what happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_build_interrupted_by_a_crash_runs_again_after_restart() {
    // The commands share marker files with the test: the host-process runner.
    let mut w = World::start_with(
        "build-crash",
        false,
        &[("PRISM_JOB_LEASE_SECONDS", "2"), ("PRISM_BUILD_RUNNER", "unsandboxed")],
    )
    .await;
    w.server
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
            &w.busybox_base("UTC"),
        ])
        .ok();
    wait_base(&w.server, "busybox");
    let sha = repo(&w.git_root(), "slow", &[("index.html", "slow but sure\n")], &[]);
    let marker = w.tmp.path().join("first-attempt-started");
    // The first attempt leaves a marker and waits; the second finds it and goes on.
    let command = format!(
        "if [ -s {m} ]; then echo second attempt; else echo $$ > {m}.tmp; mv {m}.tmp {m}; sleep 600; fi",
        m = marker.display()
    );
    w.app(
        "slow",
        json!({"stack": "static", "base_image": "busybox", "registry": "main", "git_credential": "gitea",
               "artifact_paths": ["index.html"], "build_command": command, "cmd": ["cat", "/app/index.html"]}),
    );
    let rel = w.server.json(&[
        "release", "create", "--app", "slow", "--ref", "main", "--note", "crash me", "--build",
    ]);
    let id = rel["build"]["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the first attempt never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    w.server.crash_and_restart();
    // The crash left the first attempt's command running (as a crashed server would).
    // Its shell (which wrote its pid into the marker) leads its own process
    // group, the local executor's doing: end the group.
    let pid = std::fs::read_to_string(&marker).unwrap();
    let _ = Command::new("kill")
        .args(["-9", "--", &format!("-{}", pid.trim())])
        .status();
    let b = wait_build(&w.server, id);
    assert_eq!(b["state"], "succeeded", "{b}\n{}", w.server.log());
    assert_eq!(b["commit_sha"], sha.as_str());
    let log = w.server.run(&["build", "log", &id.to_string()]).ok().stdout;
    assert!(log.contains("the previous attempt stopped during building"), "{log}");
    assert!(log.contains("second attempt"), "{log}");
    assert_eq!(w.server.json(&["release", "show", "r1"])["state"], "built");
    assert_eq!(
        run_image(&w.image("shop/slow:r1"), w.tmp.path(), Some(&w.creds())),
        "slow but sure\n"
    );
}

/// Builds take the CPU: with PRISM_BUILD_CONCURRENCY=1 two queued builds run one after the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn builds_beyond_the_concurrency_limit_wait_their_turn() {
    // The commands share marker files with the test: the host-process runner.
    let w = World::start_with(
        "build-limit",
        false,
        &[("PRISM_BUILD_CONCURRENCY", "1"), ("PRISM_BUILD_RUNNER", "unsandboxed")],
    )
    .await;
    let s = &w.server;
    s.run(&[
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
        &w.busybox_base("UTC"),
    ])
    .ok();
    wait_base(s, "busybox");
    let dir = w.tmp.path().join("turns");
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display();
    let command = format!(
        "if [ -e {d}/running ]; then touch {d}/overlap; fi; touch {d}/running; sleep 1; rm {d}/running; touch {d}/done-$PRISM_APPLICATION"
    );
    let mut ids = Vec::new();
    for app in ["one", "two"] {
        repo(&w.git_root(), app, &[("index.html", app)], &[]);
        w.app(
            app,
            json!({"stack": "static", "base_image": "busybox", "registry": "main", "git_credential": "gitea",
                   "artifact_paths": ["index.html"], "build_command": command}),
        );
        let rel = s.json(&[
            "release", "create", "--app", app, "--ref", "main", "--note", "turns", "--build",
        ]);
        ids.push(rel["build"]["id"].as_i64().unwrap());
    }
    for id in ids {
        assert_eq!(wait_build(s, id)["state"], "succeeded");
    }
    assert!(dir.join("done-one").exists() && dir.join("done-two").exists());
    assert!(!dir.join("overlap").exists(), "two builds ran at once");
}

fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .collect()
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// This test's build command (`sleep 600`) running as a build container's
/// uid (the server's default range); other tests' builds do not match.
fn container_sleepers() -> Vec<u32> {
    use std::os::unix::fs::MetadataExt;
    pids()
        .into_iter()
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}"))
                .map(|m| (100_000..165_536).contains(&m.uid()))
                .unwrap_or(false)
                && cmdline(*pid).trim() == "sleep 600"
        })
        .collect()
}

/// The server's children that hold a build's network (the namespace holder, slirp4netns).
fn network_helpers_of(server: u32) -> Vec<u32> {
    pids()
        .into_iter()
        .filter(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let parent = status
                .lines()
                .find_map(|l| l.strip_prefix("PPid:"))
                .and_then(|p| p.trim().parse::<u32>().ok());
            let cmd = cmdline(*pid);
            parent == Some(server) && (cmd.starts_with("sleep 86400") || cmd.contains("slirp4netns"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_contained_build_interrupted_by_a_crash_leaves_no_container_and_runs_again() {
    let mut w = World::start_with("build-crash-contained", false, &[("PRISM_JOB_LEASE_SECONDS", "2")]).await;
    w.server
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
            &w.busybox_base("UTC"),
        ])
        .ok();
    wait_base(&w.server, "busybox");
    repo(&w.git_root(), "slow", &[("index.html", "slow but sure\n")], &[]);
    // The dependency cache outlives an attempt: the first leaves a marker there and waits.
    let command = "if [ -e /cache/started ]; then echo second attempt; else touch /cache/started; sleep 600; fi";
    w.app(
        "slow",
        json!({"stack": "static", "base_image": "busybox", "registry": "main", "git_credential": "gitea",
               "artifact_paths": ["index.html"], "build_command": command}),
    );
    let rel = w.server.json(&[
        "release", "create", "--app", "slow", "--ref", "main", "--note", "crash me", "--build",
    ]);
    let id = rel["build"]["id"].as_i64().unwrap();
    let caches = w.server.data_dir().join("build-caches");
    let started = || {
        std::fs::read_dir(&caches)
            .map(|d| d.flatten().any(|e| e.path().join("started").exists()))
            .unwrap_or(false)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !started() {
        assert!(Instant::now() < deadline, "the first attempt never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The marker is made just before `sleep` starts: give the shell its moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    while container_sleepers().is_empty() {
        assert!(Instant::now() < deadline, "the first attempt runs in a container");
        std::thread::sleep(Duration::from_millis(50));
    }
    let helpers = network_helpers_of(w.server.child.id());
    assert_eq!(helpers.len(), 2, "a namespace holder and slirp4netns");
    w.server.crash_and_restart();
    // The restarted server removed the container the killed one left; the
    // build ran again and found the marker.
    let b = wait_build(&w.server, id);
    assert_eq!(b["state"], "succeeded", "{b}\n{}", w.server.log());
    let log = w.server.run(&["build", "log", &id.to_string()]).ok().stdout;
    assert!(log.contains("second attempt"), "{log}");
    assert!(
        container_sleepers().is_empty(),
        "the killed attempt's container was left running"
    );
    let runc = Command::new("runc")
        .arg("--root")
        .arg(w.server.data_dir().join("runc/state"))
        .args(["list", "--quiet"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&runc.stdout).trim(), "", "containers left");
    // Neither the namespace holder nor slirp4netns of the killed attempt lives on.
    let alive: Vec<u32> = helpers
        .into_iter()
        .filter(|p| {
            // A zombie (killed, not yet reaped by init) is not running.
            std::fs::read_to_string(format!("/proc/{p}/status"))
                .map(|s| !s.lines().any(|l| l.starts_with("State:") && l.contains('Z')))
                .unwrap_or(false)
        })
        .collect();
    assert!(alive.is_empty(), "network helpers of the killed server left: {alive:?}");
}
