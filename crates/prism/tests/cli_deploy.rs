//! End-to-end tests of `prism deploy`, `prism template`, `prism cluster
//! health` and `prism user passwd`: each test starts a real `prism serve` on
//! a free port with its own data directory and runs the real binary against
//! it (the same harness as cli.rs). No Kubernetes cluster is needed: the
//! clusters here are unreachable, so deploys fail while planning.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_prism");
const ADMIN_PASSWORD: &str = "some-long-password";
const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "prism-cli-deploy-test-{name}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    /// Where the CLI keeps credentials (PRISM_CONFIG_DIR); not created beforehand.
    fn config_dir(&self) -> PathBuf {
        self.0.join("config")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What one run of the CLI did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success, got {self:#?}");
        self
    }

    fn json(self) -> Value {
        let run = self.ok();
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", run.stdout))
    }

    /// Like `fails_with`, for commands that print progress on stderr before
    /// the error: only the last line starts with `error: `.
    fn ends_with_error(self, code: i32, needle: &str) -> Run {
        assert_eq!(self.code, code, "expected exit code {code}, got {self:#?}");
        let last = self.stderr.lines().last().unwrap_or("");
        assert!(
            last.starts_with("error: ") && last.contains(needle),
            "the last line of stderr should be an error mentioning {needle:?}: {self:#?}"
        );
        self
    }

    fn fails_with(self, code: i32, needle: &str) -> Run {
        assert_eq!(self.code, code, "expected exit code {code}, got {self:#?}");
        assert!(
            self.stderr.starts_with("error: "),
            "stderr should start with `error: `: {self:#?}"
        );
        assert!(
            self.stderr.contains(needle),
            "stderr should mention {needle:?}: {self:#?}"
        );
        self
    }
}

/// Runs the CLI with a clean environment: no PRISM_* variables but the config dir.
fn prism(config_dir: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PRISM_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("PRISM_CONFIG_DIR", config_dir).env("NO_COLOR", "1").args(args);
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start prism");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for prism");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// `GET /healthz` over plain HTTP/1.0: whether the answer is 200.
fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .lines()
        .next()
        .is_some_and(|status| status.split_whitespace().nth(1) == Some("200"))
}

/// A running `prism serve`, killed on drop.
struct Server {
    child: Child,
    url: String,
    // Dropped after the child is killed (fields drop in order, after `Drop::drop`).
    scratch: Scratch,
}

impl Server {
    fn start(name: &str) -> Server {
        let scratch = Scratch::new(name);
        let port = free_port();
        let log = std::fs::File::create(scratch.0.join("server.log")).expect("server log");
        let mut cmd = Command::new(BIN);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PRISM_") {
                cmd.env_remove(key);
            }
        }
        let child = cmd
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(scratch.0.join("data"))
            .env("PRISM_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start prism serve");
        let mut server = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            scratch,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !healthy(port) {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("prism serve exited with {status}:\n{}", server.log());
            }
            assert!(
                Instant::now() < deadline,
                "prism serve not healthy within 30 s:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.scratch.0.join("server.log")).unwrap_or_default()
    }

    fn config_dir(&self) -> PathBuf {
        self.scratch.config_dir()
    }

    fn run(&self, args: &[&str]) -> Run {
        prism(&self.config_dir(), args, None)
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        prism(&self.config_dir(), args, Some(stdin))
    }

    /// Runs a command with `--output json` and parses what it printed.
    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        self.run(&args).json()
    }

    fn login_admin(&self) {
        self.run_with_stdin(
            &["login", &self.url, "--username", "admin", "--password-stdin"],
            &format!("{ADMIN_PASSWORD}\n"),
        )
        .ok();
    }

    /// A logged-in admin with project `shop` and application `web`.
    fn with_app(name: &str) -> Server {
        let server = Server::start(name);
        server.login_admin();
        server
            .run(&["project", "create", "shop", "--description", "The shop"])
            .ok();
        server
            .run(&[
                "app",
                "create",
                "web",
                "--project",
                "shop",
                "--git-url",
                "https://git.example.com/web.git",
            ])
            .ok();
        server
    }

    /// Creates a release of `web` and builds it with an image: state `built`.
    fn built_release(&self) -> String {
        let rel = self.json(&[
            "release",
            "create",
            "--app",
            "web",
            "--ref",
            "main",
            "--note",
            "first cut",
        ]);
        let id = rel["id"].as_str().expect("release id").to_owned();
        self.run(&["release", "start-build", &id]).ok();
        let built = self.json(&[
            "release",
            "build-result",
            &id,
            "--succeeded",
            "--commit-sha",
            "abcdef1",
            "--image-ref",
            "registry.example.com/shop/web:1.0",
            "--image-digest",
            DIGEST,
        ]);
        assert_eq!(built["state"], "built");
        id
    }

    /// A cluster nobody listens at, bound to `env`.
    fn unreachable_cluster_for(&self, env: &str) {
        self.run(&[
            "cluster",
            "create",
            "nowhere",
            "--api-url",
            "https://127.0.0.1:1",
            "--insecure-skip-tls-verify",
        ])
        .ok();
        self.run(&["env", "update", env, "--cluster", "nowhere"]).ok();
    }

    /// Writes a file in the scratch directory and returns its path.
    fn file(&self, name: &str, text: &str) -> String {
        let path = self.scratch.0.join(name);
        std::fs::write(&path, text).expect("write file");
        path.to_string_lossy().into_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A ConfigMap template of the project's own.
const EXTRA: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ (app.name ~ "-extra") | tojson }}
  namespace: {{ env.namespace | tojson }}
data:
  release: {{ release.id | tojson }}
"#;

#[test]
fn template_set_shows_up_in_show_and_versions() {
    let server = Server::with_app("tplset");

    let before = server.run(&["template", "show", "shop"]).ok();
    assert!(before.stdout.contains("version 0"), "{before:#?}");
    let row = before
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("deployment.yaml"))
        .unwrap_or_else(|| panic!("no deployment.yaml: {before:#?}"));
    assert!(row.contains("(built-in)"), "{before:#?}");
    assert_eq!(server.json(&["template", "versions", "shop"]), serde_json::json!([]));
    let builtin = server.run(&["template", "get", "shop", "deployment.yaml"]).ok();
    assert!(builtin.stdout.contains("kind: Deployment"), "{builtin:#?}");

    let path = server.file("extra.yaml", EXTRA);
    let saved = server
        .run(&[
            "template",
            "set",
            "shop",
            "extra.yaml",
            "--file",
            &path,
            "--note",
            "an extra map",
        ])
        .ok();
    assert!(saved.stdout.contains("version 1"), "{saved:#?}");

    let shown = server.json(&["template", "show", "shop"]);
    assert_eq!(shown["current"]["version"], 1);
    assert_eq!(shown["current"]["author"], "admin");
    assert_eq!(shown["current"]["files"]["extra.yaml"], EXTRA);
    let table = server.run(&["template", "show", "shop"]).ok();
    assert!(table.stdout.contains("version 1"), "{table:#?}");
    let row = table
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("extra.yaml"))
        .unwrap_or_else(|| panic!("no extra.yaml: {table:#?}"));
    assert!(row.contains("(project)"), "{table:#?}");
    let got = server.run(&["template", "get", "shop", "extra.yaml"]).ok();
    assert_eq!(got.stdout, EXTRA);

    let versions = server.json(&["template", "versions", "shop"]);
    assert_eq!(versions[0]["version"], 1);
    assert_eq!(versions[0]["note"], "an extra map");
    let listed = server.run(&["template", "versions", "shop"]).ok();
    assert!(listed.stdout.contains("an extra map"), "{listed:#?}");

    // An empty file removes a built-in; --remove drops the project's own.
    let empty = server.file("empty.yaml", "");
    server
        .run(&["template", "set", "shop", "service.yaml", "--file", &empty])
        .ok();
    let table = server.run(&["template", "show", "shop"]).ok();
    let row = table
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("service.yaml"))
        .unwrap_or_else(|| panic!("no service.yaml: {table:#?}"));
    assert!(row.contains("removed"), "{table:#?}");
    server
        .run(&["template", "get", "shop", "service.yaml"])
        .fails_with(1, "removed the built-in template service.yaml");
    server.run(&["template", "set", "shop", "extra.yaml", "--remove"]).ok();
    let shown = server.json(&["template", "show", "shop"]);
    assert_eq!(shown["current"]["version"], 3);
    assert_eq!(shown["current"]["files"], serde_json::json!({"service.yaml": ""}));
    assert_eq!(
        server.json(&["template", "versions", "shop"]).as_array().map(Vec::len),
        Some(3)
    );
    server
        .run(&["template", "set", "shop", "extra.yaml", "--remove"])
        .fails_with(2, "no template extra.yaml of its own");
}

#[test]
fn a_template_with_a_jinja_syntax_error_is_refused_naming_it() {
    let server = Server::with_app("tplbad");
    let path = server.file("bad.yaml", "kind: Deployment\n{% if %}\n");
    server
        .run(&["template", "set", "shop", "deployment.yaml", "--file", &path])
        .fails_with(1, "deployment.yaml");
    assert_eq!(
        server.json(&["template", "show", "shop"])["current"]["version"],
        0,
        "nothing was saved"
    );
    // The same from standard input.
    server
        .run_with_stdin(&["template", "set", "shop", "hpa.yaml", "--file", "-"], "{{ unclosed\n")
        .fails_with(1, "hpa.yaml");
}

#[test]
fn template_preview_renders_the_release_with_unsaved_templates_overlaid() {
    let server = Server::with_app("preview");
    let id = server.built_release();

    let run = server
        .run(&["template", "preview", "--app", "web", "--env", "fat", "--release", &id])
        .ok();
    assert!(run.stdout.contains(r#""kind": "Deployment""#), "{run:#?}");
    let image = format!("registry.example.com/shop/web@{DIGEST}");
    assert!(run.stdout.contains(&image), "{run:#?}");
    assert!(!run.stdout.contains("web-extra"), "{run:#?}");

    let extra = server.file("extra.yaml", EXTRA);
    let run = server
        .run(&[
            "template",
            "preview",
            "--app",
            "web",
            "--env",
            "fat",
            "--release",
            &id,
            "--file",
            &format!("extra.yaml={extra}"),
        ])
        .ok();
    assert!(run.stdout.contains(r#""kind": "ConfigMap""#), "{run:#?}");
    assert!(run.stdout.contains("web-extra"), "{run:#?}");
    assert!(
        run.stdout.contains(r#""kind": "Deployment""#),
        "the built-ins are still there: {run:#?}"
    );
    assert_eq!(
        server.json(&["template", "show", "shop"])["current"]["version"],
        0,
        "a preview saves nothing"
    );

    let json = server.json(&["template", "preview", "--app", "web", "--env", "fat", "--release", &id]);
    assert!(json["yaml"].as_str().is_some_and(|y| y.contains(&image)), "{json}");

    server
        .run(&[
            "template",
            "preview",
            "--app",
            "web",
            "--env",
            "fat",
            "--release",
            "r99",
        ])
        .fails_with(1, "no release r99");
}

#[test]
fn deploying_to_an_environment_without_a_cluster_fails() {
    let server = Server::with_app("nocluster");
    let id = server.built_release();
    server.run(&["release", "promote", &id, "--env", "fat"]).ok();
    server
        .run(&["deploy", &id, "--env", "fat"])
        .fails_with(1, "not bound to a cluster");
    server
        .run(&["deploy", "start", &id, "--env", "fat", "--no-follow"])
        .fails_with(1, "not bound to a cluster");
    assert_eq!(server.json(&["deploy", "list"]), serde_json::json!([]));
    server.run(&["deploy", &id]).fails_with(2, "--env");
    server
        .run(&["deploy", "--env", "fat", "show", "1"])
        .fails_with(2, "not with a subcommand");
}

#[test]
fn a_deploy_to_an_unreachable_cluster_is_followed_to_its_failure() {
    let server = Server::with_app("deployfail");
    server.unreachable_cluster_for("fat");
    let id = server.built_release();
    server.run(&["release", "promote", &id, "--env", "fat"]).ok();

    let run = server.run(&["deploy", &id, "--env", "fat", "--note", "go"]);
    let run = run.ends_with_error(1, "deploy 1 failed: the cluster cannot be reached");
    assert!(run.stderr.contains("queued"), "{run:#?}");
    assert!(run.stderr.contains("plan"), "{run:#?}");

    let deploy = server.json(&["deploy", "show", "1"]);
    assert_eq!(deploy["state"], "failed");
    assert_eq!(deploy["release"], id.as_str());
    assert_eq!(deploy["environment"], "fat");
    let table = server.run(&["deploy", "show", "1"]).ok();
    assert!(table.stdout.contains("failed"), "{table:#?}");

    let listed = server.json(&["deploy", "list", "--app", "web", "--env", "fat", "--release", &id]);
    assert_eq!(listed.as_array().map(Vec::len), Some(1));

    let events = server.json(&["deploy", "events", "1"]);
    let steps: Vec<&str> = events
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["step"].as_str())
        .collect();
    assert_eq!(steps.first(), Some(&"queued"), "{events}");
    assert_eq!(steps.last(), Some(&"failed"), "{events}");

    // Watching a finished deploy replays it: one JSON line per event.
    let watched = server.run(&["deploy", "watch", "1", "--output", "json"]);
    let watched = watched.ends_with_error(1, "deploy 1 failed");
    let lines: Vec<serde_json::Value> = watched
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), steps.len() + 1, "{watched:#?}");
    assert_eq!(lines[0]["event"], "step");
    assert_eq!(lines[0]["data"]["step"], "queued");
    let end = lines.last().unwrap();
    assert_eq!(end["event"], "end");
    assert_eq!(end["data"]["state"], "failed");

    server
        .run(&["deploy", "review", "1", "--approve"])
        .fails_with(1, "not awaiting review");
    server
        .run(&["deploy", "rollback", "--app", "web", "--env", "fat"])
        .fails_with(1, "no earlier successful deploy");
    let drift = server.run(&["deploy", "drift", "--app", "web", "--env", "fat"]).ok();
    assert!(drift.stdout.contains("Drifted: no"), "{drift:#?}");
}

#[test]
fn the_health_of_an_unreachable_cluster_exits_1() {
    let server = Server::start("health");
    server.login_admin();
    server.unreachable_cluster_for("fat");
    let run = server.run(&["cluster", "health", "nowhere"]);
    let run = run.fails_with(1, "cluster nowhere is not healthy");
    assert!(run.stdout.contains("Healthy:"), "{run:#?}");
    let json = server.run(&["cluster", "health", "nowhere", "--output", "json"]);
    assert_eq!(json.code, 1, "{json:#?}");
    let answer: Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(answer["ok"], false);
    server.run(&["cluster", "health", "missing"]).fails_with(1, "missing");
}

#[test]
fn user_passwd_changes_a_password() {
    let server = Server::start("passwd");
    server.login_admin();
    server
        .run_with_stdin(&["user", "create", "bob", "--password-stdin"], "bobs-first-password\n")
        .ok();

    // Bob changes his own: the new password, then the current one.
    let bob = Scratch::new("passwd-bob");
    let login = |password: &str| {
        prism(
            &bob.config_dir(),
            &["login", &server.url, "--username", "bob", "--password-stdin"],
            Some(&format!("{password}\n")),
        )
    };
    login("bobs-first-password").ok();
    prism(
        &bob.config_dir(),
        &["user", "passwd", "--password-stdin"],
        Some("bobs-second-password\n"),
    )
    .fails_with(2, "current password");
    prism(
        &bob.config_dir(),
        &["user", "passwd", "--password-stdin"],
        Some("bobs-second-password\nnot-his-password\n"),
    )
    .fails_with(1, "current_password");
    let changed = prism(
        &bob.config_dir(),
        &["user", "passwd", "--password-stdin"],
        Some("bobs-second-password\nbobs-first-password\n"),
    )
    .ok();
    assert!(changed.stdout.contains("Changed the password of bob"), "{changed:#?}");
    login("bobs-first-password").fails_with(1, "wrong username or password");
    login("bobs-second-password").ok();

    // Bob cannot set someone else's; an admin sets his without the current one.
    prism(
        &bob.config_dir(),
        &["user", "passwd", "admin", "--password-stdin"],
        Some("whatever-password\n"),
    )
    .fails_with(1, "admin");
    server
        .run_with_stdin(&["user", "passwd", "bob", "--password-stdin"], "bobs-third-password\n")
        .ok();
    login("bobs-third-password").ok();
}
